"""Terraform preflight: a CI step asks the gate before `terraform apply` (API.md)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from controlplane.core.errors import TollgateError
from controlplane.core.serializers import PrintableKeyField, StrictSerializer, UsdField
from controlplane.tenancy.api.views_base import CHECKED_IN_VIEW, TenantScopedAPIView
from enforcement import scopes
from enforcement.api import serializers as s
from enforcement.api.gatecall import gate_call, gate_request_from
from enforcement.errors import EnforcementErrorCode
from enforcement.integrations.infracost import InfracostError, plan_cost
from enforcement.services.gate import request_fingerprint

SOURCE = "terraform"


class PreflightSerializer(StrictSerializer):
    run_id = PrintableKeyField(max_length=200)
    stage = serializers.RegexField(r"^[a-z][a-z0-9_.-]{0,31}$", default="apply")
    project = serializers.SlugField(max_length=63, required=False)
    environment = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,63}$", required=False)
    infracost = serializers.DictField(
        required=False, help_text="The output of `infracost breakdown --format json`."
    )
    monthly_delta_usd = UsdField(required=False)
    hourly_delta_usd = UsdField(required=False)
    estimated_cost_usd = UsdField(required=False)
    expected_fingerprint = serializers.RegexField(
        r"^sha256:[0-9a-f]{64}$",
        required=False,
        help_text="The `fingerprint` of the first answer: a retry whose plan changed is 409 "
        "PLAN_CHANGED.",
    )
    labels = serializers.DictField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=dict,
        validators=[s.labels_within_limits],
    )
    requester = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    ttl_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    approval_token = serializers.CharField(required=False, allow_null=True, max_length=8192)
    idempotency_key = PrintableKeyField(required=False, min_length=1)

    def validate(self, attrs):
        costs = [
            k for k in ("monthly_delta_usd", "hourly_delta_usd", "estimated_cost_usd") if k in attrs
        ]
        if "infracost" in attrs and costs:
            raise serializers.ValidationError(
                {"infracost": [f"Send either `infracost` or {', '.join(costs)}, not both."]}
            )
        if "infracost" not in attrs and not costs:
            raise serializers.ValidationError(
                {"infracost": ["Required: an Infracost JSON document or monthly_delta_usd."]}
            )
        return attrs


def preflight_fields(data: dict) -> dict:
    """The gate request fields of a validated preflight (the Infracost document costed)."""
    resource = {"type": "terraform_plan", "id": data["run_id"], "attributes": {}}
    fields = {
        "project": data.get("project"),
        "environment": data.get("environment"),
        "action": f"terraform.{data['stage']}",
        "monthly_delta_usd": data.get("monthly_delta_usd"),
        "hourly_delta_usd": data.get("hourly_delta_usd"),
        "estimated_cost_usd": data.get("estimated_cost_usd"),
        "labels": data.get("labels") or {},
        "requester": data.get("requester") or "",
        "ttl_seconds": data.get("ttl_seconds"),
        "approval_token": data.get("approval_token"),
    }
    if "infracost" in data:
        try:
            cost = plan_cost(data["infracost"])
        except InfracostError as exc:
            raise TollgateError(
                EnforcementErrorCode.INFRACOST_INVALID,
                f"The Infracost document is not usable: {exc.field}: {exc.message}",
                errors=[{"field": exc.field, "message": exc.message, "code": "invalid"}],
            ) from exc
        fields["monthly_delta_usd"] = cost.monthly_micros
        fields["hourly_delta_usd"] = cost.hourly_micros
        resource["attributes"] = {
            "resources": cost.resources,
            "resource_types": cost.resource_types,
            "diff_monthly_usd": _usd(cost.diff_monthly_micros),
            "total_monthly_usd": _usd(cost.total_monthly_micros),
            "projects": cost.projects,
        }
    fields["resource"] = resource
    return fields


def _usd(micros: int) -> str:
    from controlplane.core.money import format_usd

    return format_usd(micros)


class TerraformPreflightView(TenantScopedAPIView):
    required_scopes = {"POST": scopes.GATE_WRITE}
    bound_keys = {"POST": CHECKED_IN_VIEW}  # the gate refuses a project/env outside the binding
    max_body_bytes = 2 * 1024 * 1024  # an Infracost document of a large plan
    serializer_class = PreflightSerializer

    @extend_schema(
        operation_id="gate_terraform_preflight",
        request=PreflightSerializer,
        responses={201: s.GateDecisionResponseSerializer, 200: s.GateDecisionResponseSerializer},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)
        ],
        description="Gate a Terraform plan: explicit deltas or an Infracost JSON document. "
        "The idempotency key defaults to `terraform:{run_id}:{stage}`; `expected_fingerprint` "
        "makes a retry whose plan changed fail with 409 PLAN_CHANGED. The answer is the gate's.",
    )
    def post(self, request):
        body = PreflightSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        key = (
            request.headers.get("Idempotency-Key")
            or data.get("idempotency_key")
            or f"{SOURCE}:{data['run_id']}:{data['stage']}"
        )
        gate_request = gate_request_from(preflight_fields(data), source=SOURCE, idempotency_key=key)
        expected = data.get("expected_fingerprint")
        if expected:
            api_key = request.auth
            project = gate_request.project or (api_key.project.slug if api_key.project_id else "")
            environment = gate_request.environment or api_key.environment or ""
            actual = request_fingerprint(gate_request, project, environment)
            if actual != expected:
                raise TollgateError(
                    EnforcementErrorCode.PLAN_CHANGED,
                    "The plan changed since it was gated: its fingerprint is not the expected one.",
                    status=409,
                    extra={"expected_fingerprint": expected, "fingerprint": actual},
                )
        answer, code = gate_call(tenant=self.tenant, api_key=request.auth, req=gate_request)
        return Response(answer, status=code)
