"""SCIM tokens: issue (shown once), rotate (with an optional grace period), revoke."""

from __future__ import annotations

from datetime import timedelta

import structlog
from django.db import transaction

from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.identity import tokens
from controlplane.identity.errors import IdentityErrorCode
from controlplane.identity.models import ScimToken
from controlplane.tenancy.models import Tenant

log = structlog.get_logger(__name__)


@transaction.atomic
def scim_token_issue(*, tenant: Tenant, name: str, created_by=None) -> tuple[ScimToken, str]:
    """A new SCIM token for the tenant: (row, plaintext). Only a digest of the secret is kept."""
    if tenant.lifecycle == Tenant.Lifecycle.TERMINATED:
        raise TollgateError(
            IdentityErrorCode.TENANT_TERMINATED,
            f"Tenant {tenant.slug} is terminated; it cannot get a SCIM token.",
            status=409,
        )
    prefix, digest, plaintext = tokens.generate()
    token = ScimToken.objects.create(
        tenant=tenant, name=name, prefix=prefix, digest=digest, created_by=created_by
    )
    ledger_append_control(
        tenant_id=tenant.id,
        kind="scim_token.issued",
        payload={
            "scim_token": token.id,
            "prefix": prefix,
            "name": name,
            "created_by": getattr(created_by, "pk", None),
        },
    )
    log.info("scim_token_issued", tenant=tenant.id, scim_token=token.id, prefix=prefix)
    return token, plaintext


@transaction.atomic
def scim_token_rotate(
    *, token: ScimToken, grace_seconds: int = 0, created_by=None
) -> tuple[ScimToken, str]:
    """Issue a successor with the same name; the old token stops working now, or after
    ``grace_seconds`` so the identity provider can be reconfigured without a gap."""
    locked = ScimToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is not None:
        raise TollgateError(
            IdentityErrorCode.SCIM_TOKEN_REVOKED,
            f"SCIM token {locked.masked} is revoked; issue a new one instead of rotating it.",
            status=409,
        )
    successor, plaintext = scim_token_issue(
        tenant=locked.tenant, name=locked.name, created_by=created_by
    )
    now = db_now()
    if grace_seconds > 0:
        ends = now + timedelta(seconds=grace_seconds)
        locked.expires_at = min(locked.expires_at, ends) if locked.expires_at else ends
    else:
        locked.revoked_at = now
    locked.save(update_fields=["expires_at", "revoked_at", "updated_at"])
    ledger_append_control(
        tenant_id=locked.tenant_id,
        kind="scim_token.rotated",
        payload={
            "scim_token": locked.id,
            "successor": successor.id,
            "grace_seconds": max(grace_seconds, 0),
        },
    )
    return successor, plaintext


@transaction.atomic
def scim_token_revoke(*, token: ScimToken) -> ScimToken:
    """Revoke a token at once; revoking a revoked token changes nothing."""
    locked = ScimToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is None:
        locked.revoked_at = db_now()
        locked.save(update_fields=["revoked_at", "updated_at"])
        ledger_append_control(
            tenant_id=locked.tenant_id, kind="scim_token.revoked", payload={"scim_token": locked.id}
        )
        log.info("scim_token_revoked", tenant=locked.tenant_id, scim_token=locked.id)
    return locked
