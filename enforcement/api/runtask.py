"""HCP Terraform run tasks: the integrations a tenant registers, and the signed receiver."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.core.errors import TollgateError
from controlplane.core.parsers import StrictJSONParser
from controlplane.core.serializers import StrictSerializer
from controlplane.tenancy.api.views_base import CHECKED_IN_VIEW, Confine, TenantScopedAPIView
from controlplane.tenancy.selectors import project_get
from enforcement import scopes
from enforcement.models import RunTaskIntegration
from enforcement.services import run_tasks
from enforcement.services.gate.request import key_binding_check


class RunTaskIntegrationSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = RunTaskIntegration
        fields = ["id", "name", "project", "environment", "url", "created_at", "revoked_at"]

    def get_url(self, obj) -> str:
        path = reverse("gate-terraform-run-task")
        return f"{settings.TOLLGATE_PUBLIC_URL}{path}?integration={obj.id}"


class RunTaskIntegrationCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    project = serializers.SlugField(max_length=63, required=False)
    environment = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,63}$", required=False)


class RunTaskIntegrationCreatedSerializer(RunTaskIntegrationSerializer):
    hmac_key = serializers.CharField(help_text="Shown once: set it as the run task's HMAC key.")

    class Meta(RunTaskIntegrationSerializer.Meta):
        fields = [*RunTaskIntegrationSerializer.Meta.fields, "hmac_key"]


class RunTaskIntegrationListView(TenantScopedAPIView):
    model = RunTaskIntegration
    required_scopes = {"GET": scopes.INTEGRATIONS_READ, "POST": scopes.INTEGRATIONS_WRITE}
    bound_keys = {
        "GET": Confine(project="project", environment="environment"),
        "POST": CHECKED_IN_VIEW,
    }
    serializer_class = RunTaskIntegrationSerializer

    def base_queryset(self):
        return RunTaskIntegration.objects.select_related("project")

    @extend_schema(
        operation_id="run_task_integrations_list", responses=RunTaskIntegrationSerializer(many=True)
    )
    def get(self, request):
        return self.page_response(
            self.get_queryset(), lambda rows: RunTaskIntegrationSerializer(rows, many=True).data
        )

    @extend_schema(
        operation_id="run_task_integrations_create",
        request=RunTaskIntegrationCreateSerializer,
        responses={201: RunTaskIntegrationCreatedSerializer},
        description="Register an HCP Terraform run task: the answer holds the URL and the HMAC "
        "key (shown once) to enter in HCP Terraform. Its runs are gated against this "
        "project/environment (a bound key's binding by default).",
    )
    def post(self, request):
        body = RunTaskIntegrationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data, key = body.validated_data, request.auth
        slug = data.get("project") or (key.project.slug if key.project_id else None)
        environment = data.get("environment") or key.environment
        key_binding_check(key, slug, environment)
        errors = [
            {"field": name, "message": "Required.", "code": "required"}
            for name, value in (("project", slug), ("environment", environment))
            if not value
        ]
        if errors:
            raise TollgateError(
                "VALIDATION_FAILED", "project and environment are required.", errors=errors
            )
        project = project_get(tenant=self.tenant, slug=slug)
        row, hmac_key = run_tasks.run_task_integration_create(
            tenant=self.tenant, name=data["name"], project=project, environment=environment
        )
        out = RunTaskIntegrationSerializer(row).data
        return Response({**out, "hmac_key": hmac_key}, status=201)


class RunTaskIntegrationDetailView(TenantScopedAPIView):
    model = RunTaskIntegration
    required_scopes = {"GET": scopes.INTEGRATIONS_READ, "DELETE": scopes.INTEGRATIONS_WRITE}
    bound_keys = {
        "GET": Confine(project="project", environment="environment"),
        "DELETE": Confine(project="project", environment="environment"),
    }
    serializer_class = RunTaskIntegrationSerializer

    @extend_schema(operation_id="run_task_integrations_retrieve")
    def get(self, request, id):
        return Response(RunTaskIntegrationSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="run_task_integrations_revoke",
        responses={204: None},
        description="Revoke the integration: requests signed with its key are refused (401).",
    )
    def delete(self, request, id):
        run_tasks.run_task_integration_revoke(integration=self.get_object())
        return Response(status=204)


class RawBodyJSONParser(StrictJSONParser):
    """HCP Terraform sends `application/json`; the signature covers the raw bytes."""


class RunTaskReceiveView(APIView):
    """Authenticated by HCP Terraform's signature over the body, not by an API key."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [RawBodyJSONParser, JSONParser]
    signed_by = "X-TFC-Task-Signature"  # the route walks check signed routes by this

    @extend_schema(
        operation_id="gate_terraform_run_task",
        auth=[],
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter("integration", str, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("X-TFC-Task-Signature", str, OpenApiParameter.HEADER, required=True),
        ],
        description="HCP Terraform run task receiver. The body must carry X-TFC-Task-Signature "
        "= hex HMAC-SHA512 of the body with the integration's key. The verification request "
        "(access_token `test-token`) answers 200 with no callback; any other answers 200 at "
        "once, and a worker PATCHes the task-results callback (passed/failed).",
    )
    def post(self, request):
        integration = run_tasks.verified_integration(
            integration_id=request.query_params.get("integration", ""),
            body=request.body,
            signature=request.headers.get("X-TFC-Task-Signature"),
        )
        result = run_tasks.run_task_receive(integration=integration, payload=request.data)
        if result is None:
            return Response({"status": "verified"})
        return Response({"status": "accepted", "id": result.id, "state": result.state})
