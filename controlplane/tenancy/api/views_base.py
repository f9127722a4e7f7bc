"""Base classes every tenant API view builds on: the caller's tenant and scoped querysets."""

from __future__ import annotations

from django.http import Http404
from rest_framework.generics import GenericAPIView

from controlplane.tenancy.models import Tenant


def request_tenant(request) -> Tenant:
    """The tenant of the authenticated API key."""
    return request.auth.tenant


class TenantScopedAPIView(GenericAPIView):
    """Reads go through ``model.objects.for_tenant(caller)``: another tenant's id is a 404."""

    model = None
    lookup_field = "pk"
    lookup_url_kwarg = "id"
    required_scopes: dict[str, str] = {}

    @property
    def tenant(self) -> Tenant:
        return request_tenant(self.request)

    def base_queryset(self):
        return self.model.objects.all()

    def get_queryset(self):
        return self.base_queryset().for_tenant(self.tenant)

    def get_object(self):
        value = self.kwargs[self.lookup_url_kwarg]
        obj = self.get_queryset().filter(**{self.lookup_field: value}).first()
        if obj is None:
            raise Http404
        return obj
