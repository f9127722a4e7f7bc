"""Policy endpoints: drafts from YAML/JSON, versions, publish/rollback, simulate, the schema."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiExample, OpenApiRequest, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.serializers import StrictSerializer
from controlplane.tenancy.api.views_base import TenantScopedAPIView
from enforcement import scopes
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Policy
from enforcement.policy.schema import POLICY_SCHEMA
from enforcement.services import policies as policy_services
from enforcement.services.simulation import check_window, policy_simulate


class _RawTextParser(BaseParser):
    """Hands the view the body text, so validation errors can point at YAML/JSON lines."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TollgateError(
                EnforcementErrorCode.POLICY_INVALID,
                "The policy document is not valid UTF-8.",
                errors=[{"field": "", "message": str(exc), "code": "parse_error"}],
            ) from exc


class YamlTextParser(_RawTextParser):
    media_type = "application/yaml"


class XYamlTextParser(_RawTextParser):
    media_type = "application/x-yaml"


class TextYamlParser(_RawTextParser):
    media_type = "text/yaml"


class JsonTextParser(_RawTextParser):
    media_type = "application/json"


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = Policy
        fields = [
            "id",
            "version",
            "state",
            "sha256",
            "description",
            "warnings",
            "rolled_back_from",
            "created_by",
            "created_at",
            "published_by",
            "published_at",
            "retired_at",
        ]


class PolicyDetailSerializer(PolicySerializer):
    class Meta(PolicySerializer.Meta):
        fields = [*PolicySerializer.Meta.fields, "document", "source_text", "source_format"]


class SimulateSerializer(StrictSerializer):
    document = serializers.JSONField(
        required=False, help_text="A policy document (object, or YAML/JSON text)."
    )
    version = serializers.IntegerField(required=False, min_value=1)
    since = serializers.CharField()
    until = serializers.CharField(required=False)

    def validate(self, attrs):
        if ("document" in attrs) == ("version" in attrs):
            raise serializers.ValidationError(
                {"document": ["Send exactly one of `document` or `version`."]}
            )
        return attrs


def _caller(request) -> str:
    key = request.auth
    return f"api_key:{key.prefix}" if key is not None else ""


class PolicyListView(TenantScopedAPIView):
    model = Policy
    required_scopes = {"GET": scopes.POLICIES_READ, "POST": scopes.POLICIES_WRITE}
    serializer_class = PolicySerializer
    parser_classes = [JsonTextParser, YamlTextParser, XYamlTextParser, TextYamlParser]

    @extend_schema(operation_id="policies_list", responses=PolicySerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PolicySerializer(page, many=True).data)

    @extend_schema(
        operation_id="policies_create",
        request=OpenApiRequest(
            {"type": "object", "description": "A policy document (see /api/v1/policies/schema)"},
            examples=[
                OpenApiExample(
                    "YAML",
                    media_type="application/yaml",
                    value="version: 1\nrules:\n  - id: big-prod\n    when: request.amount_usd > 500.0",
                )
            ],
        ),
        responses={201: PolicyDetailSerializer},
        description="Create a draft from a YAML (`application/yaml`) or JSON body. 400 "
        "`POLICY_INVALID` lists every error with its field path (and line).",
    )
    def post(self, request):
        text = request.data if isinstance(request.data, str) else ""
        if not text.strip():
            raise TollgateError(
                EnforcementErrorCode.POLICY_INVALID,
                "The request body is empty; send a policy document.",
                errors=[{"field": "", "message": "Empty document.", "code": "required"}],
            )
        policy = policy_services.policy_create_draft(
            tenant=self.tenant,
            text=text,
            content_type=request.content_type or "",
            created_by=_caller(request),
        )
        return Response(PolicyDetailSerializer(policy).data, status=201)


class PolicyDetailView(TenantScopedAPIView):
    model = Policy
    lookup_field = "version"
    lookup_url_kwarg = "version"
    required_scopes = {"GET": scopes.POLICIES_READ}
    serializer_class = PolicyDetailSerializer

    @extend_schema(operation_id="policies_retrieve")
    def get(self, request, version):
        return Response(PolicyDetailSerializer(self.get_object()).data)


class PolicyPublishView(TenantScopedAPIView):
    model = Policy
    lookup_field = "version"
    lookup_url_kwarg = "version"
    required_scopes = {"POST": scopes.POLICIES_PUBLISH}
    serializer_class = PolicyDetailSerializer

    @extend_schema(
        operation_id="policies_publish",
        request=None,
        responses={200: PolicyDetailSerializer, 201: PolicyDetailSerializer},
        description="Publish a draft (200). Publishing a retired version is a rollback: the "
        "document is published again as a new version (201, `rolled_back_from`).",
    )
    def post(self, request, version):
        target = self.get_object()
        published = policy_services.policy_publish(
            tenant=self.tenant, version=target.version, published_by=_caller(request)
        )
        status = 201 if published.pk != target.pk else 200
        return Response(PolicyDetailSerializer(published).data, status=status)


class PolicySimulateView(TenantScopedAPIView):
    model = Policy
    required_scopes = {"POST": scopes.POLICIES_READ}
    serializer_class = SimulateSerializer

    @extend_schema(operation_id="policies_simulate", request=SimulateSerializer)
    def post(self, request):
        body = SimulateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        since = parse_datetime(data["since"])
        until = parse_datetime(data["until"]) if data.get("until") else db_now()
        if data.get("since") and since is None:
            raise TollgateError(
                EnforcementErrorCode.SIMULATION_WINDOW_INVALID,
                "`since` must be an ISO 8601 timestamp, e.g. 2026-11-01T00:00:00Z.",
                errors=[{"field": "since", "message": "Invalid timestamp.", "code": "invalid"}],
            )
        if data.get("until") and until is None:
            raise TollgateError(
                EnforcementErrorCode.SIMULATION_WINDOW_INVALID,
                "`until` must be an ISO 8601 timestamp.",
                errors=[{"field": "until", "message": "Invalid timestamp.", "code": "invalid"}],
            )
        check_window(since, until)
        if "version" in data:
            row = self.get_queryset().filter(version=data["version"]).first()
            if row is None:
                raise TollgateError(
                    EnforcementErrorCode.POLICY_NOT_FOUND,
                    f"No policy version {data['version']} in this tenant.",
                    status=404,
                )
            compiled = policy_services.compiled_for_row(row)
        else:
            document = data["document"]
            if isinstance(document, str):
                normalised, _, _ = policy_services.validate_policy_input(text=document)
            else:
                normalised, _, _ = policy_services.validate_policy_input(data=document)
            compiled = policy_services.compiled_from_document(normalised)
        return Response(
            policy_simulate(tenant=self.tenant, policy=compiled, since=since, until=until)
        )


class PolicySchemaView(TenantScopedAPIView):
    model = Policy
    required_scopes = {"GET": scopes.POLICIES_READ}

    @extend_schema(operation_id="policies_schema", responses={200: {"type": "object"}})
    def get(self, request):
        return Response(POLICY_SCHEMA)
