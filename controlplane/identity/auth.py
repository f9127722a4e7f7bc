"""Authentication of ``/scim/v2`` requests: a tenant's SCIM bearer token names the tenant.

Failures are SCIM errors (401, or 403 for a terminated tenant). A suspended tenant keeps SCIM:
offboarding people must never wait for a bill to be paid (see docs/scim.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from controlplane.identity import tokens
from controlplane.identity.models import ScimToken
from controlplane.identity.scim.errors import ScimError
from controlplane.tenancy import keys
from controlplane.tenancy.models import Tenant

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tollgate-scim"'}
_HOW = (
    "Send `Authorization: Bearer tgscim_...` with an active SCIM token of your tenant "
    "(python manage.py create_scim_token TENANT, or the admin)."
)


@dataclass(frozen=True)
class ScimPrincipal:
    """``request.user`` of a SCIM request: the identity provider acting for one tenant."""

    token_id: str
    tenant_id: str
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False
    pk: None = None

    def __str__(self) -> str:
        return f"scim-token:{self.token_id}"


def _refused(detail: str) -> ScimError:
    return ScimError(401, f"{detail} {_HOW}", headers=_CHALLENGE)


def authenticate_scim_token(raw: str) -> ScimToken:
    """The active token a presented secret belongs to (constant-time digest check), else 401."""
    parsed = tokens.parse(raw)
    candidate = keys.digest(parsed[1] if parsed else raw)
    token = (
        ScimToken.objects.select_related("tenant").filter(prefix=parsed[0]).first()
        if parsed
        else None
    )
    if token is None or not keys.digests_match(token.digest, candidate):
        keys.digests_match(keys.DUMMY_DIGEST, candidate)  # same cost whatever failed
        raise _refused("Invalid SCIM token.")
    now = timezone.now()  # a read-only check; writes use the database clock
    if token.revoked_at is not None:
        raise _refused("This SCIM token has been revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise _refused("This SCIM token has expired (it was rotated).")
    if token.tenant.lifecycle == Tenant.Lifecycle.TERMINATED:
        raise ScimError(403, "This tenant has been terminated; its SCIM token no longer works.")
    last = token.last_used_at
    if (
        last is None
        or (now - last).total_seconds() >= settings.API_KEY_LAST_USED_RESOLUTION_SECONDS
    ):
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


class ScimTokenAuthentication(BaseAuthentication):
    """``request.auth`` is the ScimToken (its ``tenant`` attached); every SCIM read is scoped to it."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _refused("Missing bearer token.")
        token = authenticate_scim_token(value.strip())
        return ScimPrincipal(token_id=token.id, tenant_id=token.tenant_id), token

    def authenticate_header(self, request) -> str:
        return _CHALLENGE["WWW-Authenticate"]
