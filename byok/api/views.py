"""BYOK credential endpoints: thin adapters over byok.services, gated by the BYOK entitlement."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from billing.catalog import BYOK
from billing.entitlements import EntitledViewMixin
from byok import scopes, services
from byok.api import serializers as s
from byok.models import ProviderCredential
from controlplane.tenancy.api.views_base import TenantScopedAPIView

_ERRORS = (
    "Errors: 403 `FEATURE_NOT_ENTITLED` when the plan lacks BYOK; 422 "
    "`BYOK_CREDENTIAL_INVALID` when the provider rejects the key; 503 "
    "`BYOK_PROVIDER_UNAVAILABLE` (with `cause`) when the provider is rate limiting, failing, "
    "slow or unreachable. Nothing is stored or replaced in those cases."
)


def _actor(request) -> str:
    return f"api_key:{request.auth.pk}"


class ByokView(EntitledViewMixin, TenantScopedAPIView):
    """Every BYOK endpoint: scopes first, then the tenant's BYOK entitlement."""

    model = ProviderCredential
    serializer_class = s.CredentialSerializer
    entitlement = BYOK


class CredentialListView(ByokView):
    required_scopes = {"GET": scopes.BYOK_READ, "POST": scopes.BYOK_WRITE}

    @extend_schema(
        operation_id="byok_credentials_list", responses=s.CredentialSerializer(many=True)
    )
    def get(self, request):
        return self.page_response(
            self.get_queryset(), lambda rows: s.CredentialSerializer(rows, many=True).data
        )

    @extend_schema(
        operation_id="byok_credentials_create",
        request=s.CredentialCreateSerializer,
        responses={201: s.CredentialSerializer},
        description="Probe the key at the provider, then store it encrypted. " + _ERRORS,
    )
    def post(self, request):
        body = s.CredentialCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        credential = services.credential_create(
            tenant=self.tenant,
            provider=data["provider"],
            api_key=data["api_key"],
            label=data.get("label", ""),
            acknowledge_unverifiable=data.get("acknowledge_unverifiable", False),
            actor=_actor(request),
            base_url=data.get("base_url", ""),
        )
        return Response(s.CredentialSerializer(credential).data, status=status.HTTP_201_CREATED)


class CredentialDetailView(ByokView):
    required_scopes = {"GET": scopes.BYOK_READ, "DELETE": scopes.BYOK_WRITE}

    @extend_schema(operation_id="byok_credentials_retrieve")
    def get(self, request, id):
        return Response(s.CredentialSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="byok_credentials_revoke",
        responses={204: None},
        description="Revoke the credential and destroy its ciphertext. Idempotent.",
    )
    def delete(self, request, id):
        services.credential_revoke(credential_id=self.get_object().pk, actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CredentialValidateView(ByokView):
    required_scopes = {"POST": scopes.BYOK_WRITE}

    @extend_schema(
        operation_id="byok_credentials_validate",
        request=None,
        responses=s.CredentialSerializer,
        description="Probe the stored key now; the response carries the classified `status`.",
    )
    def post(self, request, id):
        credential = services.credential_validate(
            credential_id=self.get_object().pk, actor=_actor(request)
        )
        return Response(s.CredentialSerializer(credential).data)


class CredentialRotateView(ByokView):
    required_scopes = {"POST": scopes.BYOK_WRITE}

    @extend_schema(
        operation_id="byok_credentials_rotate",
        request=s.CredentialRotateSerializer,
        responses=s.CredentialSerializer,
        description="Validate the new key, then replace the old one; on any failure the old key "
        "stays in place. " + _ERRORS,
    )
    def post(self, request, id):
        credential = self.get_object()
        body = s.CredentialRotateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        credential = services.credential_rotate(
            credential_id=credential.pk,
            api_key=body.validated_data["api_key"],
            acknowledge_unverifiable=body.validated_data.get("acknowledge_unverifiable", False),
            actor=_actor(request),
        )
        return Response(s.CredentialSerializer(credential).data)
