"""Deprovisioning and reactivation of a person in one tenant (SCIM ``active`` or DELETE).

Deprovisioning, inside the caller's transaction (which holds the SCIM user's row):
membership ended (its role kept for reactivation), the person's API keys in the tenant revoked,
their votes on pending approval requests withdrawn and those requests re-counted (a hook the
enforcement layer registers), their dashboard sessions ended, and an account SCIM created
deactivated once it belongs to no tenant. Every step writes its ledger entry on the tenant's
control chain. Reactivation restores the membership, never the revoked keys.

Lock order (the vote path takes the user row first too, so no vote lands meanwhile): SCIM user
-> Tollgate user -> membership -> API keys -> approval requests (hook) -> ledger chain head.
"""

from __future__ import annotations

import structlog
from django.contrib.auth import get_user_model

from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.identity.models import ScimUser, UserSession
from controlplane.tenancy.models import Membership
from controlplane.tenancy.services import (
    api_keys_revoke_for_person,
    membership_remove,
    membership_set,
)

log = structlog.get_logger(__name__)

# Callables(tenant_id=, user_id=, reason=) -> dict merged into the ledger entry. Higher layers
# register them (enforcement withdraws votes); they run after the person's rows are locked and
# before anything is written, and must lock their own rows before appending to the ledger.
USER_DEPROVISION_HOOKS: list = []


def user_sessions_end(*, user_id) -> int:
    """Delete every dashboard session of a user; returns how many there were."""
    deleted, _ = UserSession.objects.filter(user_id=str(user_id)).delete()
    return deleted


def person_deprovision(*, scim_user: ScimUser, reason: str) -> dict:
    """Take a person out of the tenant (see module docstring); returns what was done."""
    tenant = scim_user.tenant
    user = get_user_model().objects.select_for_update().get(pk=scim_user.user_id)
    membership = Membership.objects.select_for_update().filter(tenant=tenant, user=user).first()
    summary: dict = {}
    for hook in USER_DEPROVISION_HOOKS:
        summary.update(hook(tenant_id=tenant.id, user_id=user.pk, reason=f"scim:{reason}"))
    role = (
        membership_remove(tenant=tenant, user=user, reason=f"scim:{reason}") if membership else None
    )
    # The person's keys and every key they issued (one revocation path, with the API's).
    revoked = api_keys_revoke_for_person(tenant=tenant, user=user)
    sessions = user_sessions_end(user_id=user.pk)
    deactivated = False
    if scim_user.owns_user and user.is_active and not user.memberships.exists():
        user.is_active = False
        user.save(update_fields=["is_active"])
        deactivated = True
    scim_user.active = False
    scim_user.deprovisioned_at = db_now()
    if role:
        scim_user.restore_role = role
    summary.update(
        {
            "scim_user": scim_user.id,
            "user": user.pk,
            "reason": reason,
            "membership_role": role,
            "api_keys_revoked": revoked,
            "sessions_ended": sessions,
            "account_deactivated": deactivated,
        }
    )
    ledger_append_control(tenant_id=tenant.id, kind="scim.user.deprovisioned", payload=summary)
    log.info("scim_user_deprovisioned", tenant=tenant.id, scim_user=scim_user.id, reason=reason)
    return summary


def person_reactivate(*, scim_user: ScimUser) -> None:
    """Restore the membership (with the role it had); revoked API keys stay revoked."""
    tenant = scim_user.tenant
    user = get_user_model().objects.select_for_update().get(pk=scim_user.user_id)
    if scim_user.owns_user and not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    if not Membership.objects.filter(tenant=tenant, user=user).exists():
        membership_set(tenant=tenant, user=user, role=scim_user.restore_role)
    scim_user.deprovisioned_at = None
    ledger_append_control(
        tenant_id=tenant.id,
        kind="scim.user.reactivated",
        payload={"scim_user": scim_user.id, "user": user.pk, "role": scim_user.restore_role},
    )
    log.info("scim_user_reactivated", tenant=tenant.id, scim_user=scim_user.id)
