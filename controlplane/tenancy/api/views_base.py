"""Base classes every tenant API view builds on: the caller's tenant, scoped querysets, and the
confinement of keys bound to a project and/or environment."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404
from rest_framework.generics import GenericAPIView

from controlplane.core.errors import CoreErrorCode, TollgateError
from controlplane.tenancy.errors import TenancyErrorCode
from controlplane.tenancy.models import ApiKey, Tenant


def request_tenant(request) -> Tenant:
    """The tenant of the authenticated API key."""
    return request.auth.tenant


@dataclass(frozen=True)
class Confine:
    """A bound key sees (and so reads, changes, deletes) only rows inside its binding.

    ``project`` and ``environment`` are ORM paths from the view's model to the row's project
    and environment. A row is inside the binding when its project is the key's project (if the
    key has one) and its environment is the key's environment (if the key has one and the model
    has an environment); a tenant-wide row (no project) or an all-environments row ("") is
    outside a narrower key's binding.
    """

    project: str | None
    environment: str | None = None


class Unconfined:
    """The method shows nothing project-specific (the tenant itself, the policy schema)."""


class CheckedInView:
    """The view applies the binding itself, to the body it is given (see its code and tests)."""


UNCONFINED = Unconfined()
CHECKED_IN_VIEW = CheckedInView()
BindingRule = Confine | Unconfined | CheckedInView


def confine(queryset, api_key: ApiKey, rule: Confine):
    """``queryset`` restricted to the rows inside ``api_key``'s binding."""
    if rule.project is not None and api_key.project_id is not None:
        queryset = queryset.filter(**{rule.project: api_key.project_id})
    if api_key.environment and rule.environment is not None:
        queryset = queryset.filter(**{rule.environment: api_key.environment})
    return queryset


class TenantScopedAPIView(GenericAPIView):
    """Reads go through ``model.objects.for_tenant(caller)``: another tenant's id is a 404.

    ``bound_keys`` says, per HTTP method, how a key bound to a project/environment is confined
    (``Confine``, ``UNCONFINED`` or ``CHECKED_IN_VIEW``). A method missing from it acts on the
    whole tenant: a bound key gets 403 ``KEY_BINDING_FORBIDS`` (fail closed, like scopes).
    """

    model = None
    lookup_field = "pk"
    lookup_url_kwarg = "id"
    required_scopes: dict[str, str] = {}
    bound_keys: dict[str, BindingRule] = {}
    max_body_bytes: int | None = None  # below the global MAX_REQUEST_BODY_BYTES, per endpoint

    @property
    def tenant(self) -> Tenant:
        return request_tenant(self.request)

    def binding_rule(self) -> BindingRule | None:
        method = self.request.method
        rule = self.bound_keys.get(method)
        if rule is None and method in ("HEAD", "OPTIONS"):
            rule = self.bound_keys.get("GET")
        return rule

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        api_key = request.auth
        if isinstance(api_key, ApiKey) and api_key.is_bound and self.binding_rule() is None:
            where = " / ".join(
                part
                for part in (
                    f"project {api_key.project.slug!r}" if api_key.project_id else "",
                    f"environment {api_key.environment!r}" if api_key.environment else "",
                )
                if part
            )
            raise TollgateError(
                TenancyErrorCode.KEY_BINDING_FORBIDS,
                f"This API key is bound to {where}; {request.method} on this endpoint acts on "
                "the whole tenant.",
                remediation="Use a key that is not bound to a project or environment.",
                status=403,
            )
        if self.max_body_bytes is not None:
            length = request.META.get("CONTENT_LENGTH") or "0"
            if length.isascii() and length.isdigit() and int(length) > self.max_body_bytes:
                raise TollgateError(
                    CoreErrorCode.PAYLOAD_TOO_LARGE,
                    f"The request body ({length} bytes) is larger than this endpoint accepts "
                    f"({self.max_body_bytes} bytes).",
                    remediation="Send a smaller body (see the input limits in docs/security.md).",
                    status=413,
                )

    def confined(self, queryset):
        """Apply the current method's binding rule for a bound key (no-op otherwise)."""
        api_key = self.request.auth
        rule = self.binding_rule()
        if isinstance(api_key, ApiKey) and api_key.is_bound and isinstance(rule, Confine):
            return confine(queryset, api_key, rule)
        return queryset

    def page_response(self, queryset, serialize, **bounds):
        """One page of ``queryset`` as ``{"results", "next"}``: ``serialize(rows) -> [dict]``,
        bounded in rows (``?limit=``) and in bytes (``MAX_PAGE_BYTES``); ``bounds`` are passed
        to ``page_within_budget``."""
        rows = self.paginator.page_within_budget(queryset, self.request, self, serialize, **bounds)
        return self.get_paginated_response(rows)

    def base_queryset(self):
        return self.model.objects.all()

    def get_queryset(self):
        return self.confined(self.base_queryset().for_tenant(self.tenant))

    def get_object(self):
        value = self.kwargs[self.lookup_url_kwarg]
        obj = self.get_queryset().filter(**{self.lookup_field: value}).first()
        if obj is None:
            raise Http404
        return obj
