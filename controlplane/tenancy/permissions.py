"""Scope permissions: each API view declares the scope each HTTP method needs."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from controlplane.core.errors import TollgateError
from controlplane.tenancy.errors import TenancyErrorCode
from controlplane.tenancy.models import ApiKey


class HasRequiredScopes(BasePermission):
    """Allow when the API key holds ``view.required_scopes[method]``; fail closed otherwise."""

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False  # DRF turns this into 401 when unauthenticated
        if request.method.lower() not in view.http_method_names or not hasattr(
            view, request.method.lower()
        ):
            return True  # the view answers 405 itself
        required = getattr(view, "required_scopes", {}).get(request.method)
        if request.method in ("HEAD", "OPTIONS") and required is None:
            required = getattr(view, "required_scopes", {}).get("GET")
        if required is None:
            raise TollgateError(
                TenancyErrorCode.SCOPE_MISSING,
                f"{request.method} is not allowed with an API key on this endpoint.",
                status=403,
            )
        if not api_key.has_scope(required):
            raise TollgateError(
                TenancyErrorCode.SCOPE_MISSING,
                f"This API key lacks the scope {required!r}.",
                remediation=f"Issue a key with the {required!r} scope.",
                status=403,
                extra={"required_scope": required},
            )
        return True
