"""Policy endpoints: drafts from YAML/JSON, versions, publish/rollback, simulate, the schema."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiRequest, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.params import parse_timestamp
from controlplane.core.serializers import StrictSerializer
from controlplane.tenancy.api.views_base import (
    CHECKED_IN_VIEW,
    UNCONFINED,
    Confine,
    TenantScopedAPIView,
)
from enforcement import scopes
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Policy, SimulationJob
from enforcement.policy.schema import POLICY_SCHEMA
from enforcement.services import policies as policy_services
from enforcement.services.simulation import check_window
from enforcement.services.simulation_jobs import simulation_job_create


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
    version = serializers.IntegerField(required=False, min_value=1, max_value=2_147_483_647)
    since = serializers.CharField(max_length=64, help_text="ISO 8601 (UTC if no offset)")
    until = serializers.CharField(
        max_length=64, required=False, help_text="ISO 8601; default now. At most 93 days."
    )

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
    # Reading the tenant's policy is fine for a bound key (it governs its calls); writing is not.
    bound_keys = {"GET": UNCONFINED}
    serializer_class = PolicySerializer
    parser_classes = [JsonTextParser, YamlTextParser, XYamlTextParser, TextYamlParser]

    @extend_schema(operation_id="policies_list", responses=PolicySerializer(many=True))
    def get(self, request):
        return self.page_response(
            self.get_queryset(), lambda rows: PolicySerializer(rows, many=True).data
        )

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
    bound_keys = {"GET": UNCONFINED}
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


class SimulationJobSerializer(serializers.ModelSerializer):
    """A simulation job: poll it until ``status`` is ``succeeded`` (``result``) or ``failed``."""

    status = serializers.CharField(source="state")
    window = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()
    scope = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = SimulationJob
        fields = [
            "id",
            "status",
            "window",
            "policy",
            "scope",
            "progress",
            "result",
            "error",
            "url",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_window(self, job) -> dict:
        return {"since": job.since.isoformat(), "until": job.until.isoformat()}

    def get_policy(self, job) -> dict:
        return {"version": job.policy_version, "sha256": job.policy_sha256}

    def get_scope(self, job) -> dict:
        return {
            "project": job.project.slug if job.project_id else None,
            "environment": job.environment or None,
        }

    def get_progress(self, job) -> dict:
        percent = None
        if job.total:
            percent = round(min(job.processed / job.total, 1.0) * 100, 1)
        elif job.state == SimulationJob.State.SUCCEEDED:
            percent = 100.0
        return {
            "processed": job.processed,
            "total": job.total,
            "max_decisions": job.max_decisions,
            "percent": percent,
        }

    def get_url(self, job) -> str:
        return f"/api/v1/policies/simulations/{job.id}"


def _window_value(data: dict, name: str):
    raw = data.get(name)
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        raise TollgateError(
            EnforcementErrorCode.SIMULATION_WINDOW_INVALID,
            f"`{name}`: {exc}",
            errors=[{"field": name, "message": str(exc), "code": "invalid"}],
        ) from exc


class PolicySimulateView(TenantScopedAPIView):
    model = Policy
    required_scopes = {"POST": scopes.POLICIES_READ}
    # A bound key simulates only the decisions inside its binding (the job records it).
    bound_keys = {"POST": CHECKED_IN_VIEW}
    serializer_class = SimulateSerializer

    @extend_schema(
        operation_id="policies_simulate",
        request=SimulateSerializer,
        responses={202: SimulationJobSerializer},
        description="Validate the candidate policy and the window now (400 on any error), then "
        "replay the window's decisions in a background worker: the answer is a job (202, "
        "`Location` header) to poll with `GET /api/v1/policies/simulations/{id}` until "
        "`status` is `succeeded` (the report is in `result`) or `failed`. At most "
        "`progress.max_decisions` decisions are replayed (`result.capped`).",
    )
    def post(self, request):
        body = SimulateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        since = _window_value(data, "since")
        until = _window_value(data, "until") or db_now()
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
        key = request.auth
        job = simulation_job_create(
            tenant=self.tenant,
            policy=compiled,
            since=since,
            until=until,
            project=key.project if key.project_id else None,
            environment=key.environment,
            requested_by=_caller(request),
        )
        job.refresh_from_db()
        return Response(
            SimulationJobSerializer(job).data,
            status=202,
            headers={"Location": f"/api/v1/policies/simulations/{job.id}"},
        )


_SIMULATION_BINDING = Confine(project="project", environment="environment")


class SimulationJobListView(TenantScopedAPIView):
    model = SimulationJob
    required_scopes = {"GET": scopes.POLICIES_READ}
    bound_keys = {"GET": _SIMULATION_BINDING}
    serializer_class = SimulationJobSerializer

    def base_queryset(self):
        # The list leaves out the report itself (it can be large): GET one job for it.
        return SimulationJob.objects.select_related("project").defer("result", "document")

    @extend_schema(
        operation_id="policy_simulations_list",
        responses=SimulationJobSerializer(many=True),
        description="Simulation jobs, newest first; `result` is null here (GET one job).",
    )
    def get(self, request):
        def rows(page):
            data = SimulationJobSerializer(page, many=True).data
            for row in data:
                row["result"] = None
            return data

        return self.page_response(self.get_queryset(), rows)


class SimulationJobDetailView(TenantScopedAPIView):
    model = SimulationJob
    required_scopes = {"GET": scopes.POLICIES_READ}
    bound_keys = {"GET": _SIMULATION_BINDING}
    serializer_class = SimulationJobSerializer

    def base_queryset(self):
        return SimulationJob.objects.select_related("project")

    @extend_schema(operation_id="policy_simulations_retrieve", responses=SimulationJobSerializer)
    def get(self, request, id):
        return Response(SimulationJobSerializer(self.get_object()).data)


class PolicySchemaView(TenantScopedAPIView):
    model = Policy
    required_scopes = {"GET": scopes.POLICIES_READ}
    bound_keys = {"GET": UNCONFINED}

    @extend_schema(operation_id="policies_schema", responses={200: {"type": "object"}})
    def get(self, request):
        return Response(POLICY_SCHEMA)
