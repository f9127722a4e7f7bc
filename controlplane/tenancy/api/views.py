"""Tenant, project and API key endpoints: thin adapters over selectors and services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from controlplane.tenancy import scopes, services
from controlplane.tenancy.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    ProjectCreateSerializer,
    ProjectSerializer,
)
from controlplane.tenancy.api.views_base import (
    CHECKED_IN_VIEW,
    Confine,
    TenantScopedAPIView,
)
from controlplane.tenancy.models import ApiKey, Project
from controlplane.tenancy.selectors import project_get


class ProjectListView(TenantScopedAPIView):
    model = Project
    required_scopes = {"GET": scopes.PROJECTS_READ, "POST": scopes.PROJECTS_WRITE}
    bound_keys = {"GET": Confine(project="pk")}  # creating a project acts on the tenant
    serializer_class = ProjectSerializer

    @extend_schema(operation_id="projects_list", responses=ProjectSerializer(many=True))
    def get(self, request):
        return self.page_response(
            self.get_queryset(), lambda rows: ProjectSerializer(rows, many=True).data
        )

    @extend_schema(
        operation_id="projects_create",
        request=ProjectCreateSerializer,
        responses={201: ProjectSerializer},
    )
    def post(self, request):
        body = ProjectCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        project = services.project_create(tenant=self.tenant, **body.validated_data)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(TenantScopedAPIView):
    model = Project
    required_scopes = {"GET": scopes.PROJECTS_READ}
    bound_keys = {"GET": Confine(project="pk")}
    serializer_class = ProjectSerializer

    @extend_schema(operation_id="projects_retrieve")
    def get(self, request, id):
        return Response(ProjectSerializer(self.get_object()).data)


class ApiKeyListView(TenantScopedAPIView):
    model = ApiKey
    required_scopes = {"GET": scopes.API_KEYS_READ, "POST": scopes.API_KEYS_WRITE}
    # POST: the service keeps the new key inside the calling key's scopes, binding and lifetime.
    bound_keys = {
        "GET": Confine(project="project", environment="environment"),
        "POST": CHECKED_IN_VIEW,
    }
    serializer_class = ApiKeySerializer

    def base_queryset(self):
        return ApiKey.objects.select_related("project", "user", "created_by")

    @extend_schema(operation_id="api_keys_list", responses=ApiKeySerializer(many=True))
    def get(self, request):
        return self.page_response(
            self.get_queryset(), lambda rows: ApiKeySerializer(rows, many=True).data
        )

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
        description="Issue a key. The response carries `key` once; only its prefix is kept.",
    )
    def post(self, request):
        body = ApiKeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = None
        if data.get("project"):
            project = project_get(tenant=self.tenant, slug=data["project"])
        api_key, plaintext = services.api_key_issue(
            tenant=self.tenant,
            name=data["name"],
            scopes=data["scopes"],
            project=project,
            environment=data.get("environment") or "",
            expires_at=data.get("expires_at"),
            parent=request.auth,
        )
        payload = ApiKeyCreatedSerializer(api_key).data
        payload["key"] = plaintext
        return Response(
            payload, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"}
        )


class ApiKeyDetailView(TenantScopedAPIView):
    model = ApiKey
    required_scopes = {"GET": scopes.API_KEYS_READ, "DELETE": scopes.API_KEYS_WRITE}
    bound_keys = {
        "GET": Confine(project="project", environment="environment"),
        "DELETE": Confine(project="project", environment="environment"),
    }
    serializer_class = ApiKeySerializer

    @extend_schema(operation_id="api_keys_retrieve")
    def get(self, request, id):
        return Response(ApiKeySerializer(self.get_object()).data)

    @extend_schema(
        operation_id="api_keys_revoke",
        responses={204: None},
        description="Revoke a key and every key it issued. A key revokes only keys it could "
        "have issued (scopes a subset of its own, inside its binding).",
    )
    def delete(self, request, id):
        api_key = self.get_object()
        services.key_within(
            issuer=request.auth,
            scopes=api_key.scopes,
            project_id=api_key.project_id,
            environment=api_key.environment,
            expires_at=api_key.expires_at,
            lifetime=False,
        )
        services.api_key_revoke(api_key=api_key)
        return Response(status=status.HTTP_204_NO_CONTENT)
