"""Approver groups: the only write path (the admin today, SCIM later), ledgered per tenant.

Who may approve is authority over money, so every change of a group's name or members is an
entry on the tenant's control chain.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction

from controlplane.audit.services import ledger_append_control
from controlplane.core.errors import TollgateError
from controlplane.identity.errors import IdentityErrorCode
from controlplane.identity.models import ApproverGroup


def approver_group_save(
    *,
    tenant,
    name: str,
    external_id: str = "",
    members: Iterable | None = None,
    group: ApproverGroup | None = None,
) -> ApproverGroup:
    """Create a group, or rename / re-key it; ``members`` (when given) replaces its members."""
    try:
        with transaction.atomic():
            if group is None:
                group = ApproverGroup.objects.create(
                    tenant=tenant, name=name, external_id=external_id
                )
                kind, before = "approver_group.created", set()
            else:
                group = ApproverGroup.objects.select_for_update().get(pk=group.pk)
                kind = "approver_group.updated"
                before = set(group.members.values_list("pk", flat=True))
                group.name, group.external_id = name, external_id
                group.save(update_fields=["name", "external_id", "updated_at"])
            after = before if members is None else {user.pk for user in members}
            if members is not None:
                group.members.set(list(members))
            ledger_append_control(
                tenant_id=tenant.pk,
                kind=kind,
                payload={
                    "group": group.id,
                    "name": name,
                    "external_id": external_id,
                    "members_added": sorted(after - before),
                    "members_removed": sorted(before - after),
                },
            )
    except IntegrityError as exc:
        raise TollgateError(
            IdentityErrorCode.APPROVER_GROUP_EXISTS,
            f"This tenant already has an approver group named {name!r} (or that external id).",
            remediation="Use the existing group, or choose another name.",
            status=409,
        ) from exc
    return group


@transaction.atomic
def approver_group_delete(*, group: ApproverGroup) -> None:
    """Remove a group; requests routed to it can then only be decided by the routed roles."""
    members = sorted(group.members.values_list("pk", flat=True))
    ApproverGroup.objects.filter(pk=group.pk).delete()
    ledger_append_control(
        tenant_id=group.tenant_id,
        kind="approver_group.deleted",
        payload={"group": group.id, "name": group.name, "members": members},
    )
