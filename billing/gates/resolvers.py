"""Who is calling: resolvers named in ``REQUEST_GATE_TENANT_RESOLVERS``.

A resolver takes the Django request and returns ``(tenant_id, api_key_id)`` or None when the
request carries nothing it understands. It raises ``TollgateError`` for a credential that is
present but bad: authentication always fails closed, whatever the gates' fail modes.
"""

from __future__ import annotations

from controlplane.tenancy.auth import AUTH_CACHE_ATTR, ApiKeyAuthentication


def api_key_tenant(request) -> tuple[str, str] | None:
    """``Authorization: Bearer tg_...``: authenticate once; DRF reuses the result."""
    if not request.META.get("HTTP_AUTHORIZATION"):
        return None
    result = ApiKeyAuthentication().authenticate(request)
    if result is None:
        return None
    setattr(request, AUTH_CACHE_ATTR, result)
    _user, api_key = result
    return api_key.tenant_id, api_key.id
