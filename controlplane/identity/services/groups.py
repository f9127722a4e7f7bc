"""SCIM Groups are approver groups: create, replace (PUT), patch, delete; one transaction each.

Membership changes take effect on approval routing at once (authority is read at vote time)
and each write is one ledger entry on the tenant's control chain naming who joined and left.
Members an operator added in the admin without a SCIM identity are not SCIM members: replacing
``members`` neither shows nor removes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from django.db import IntegrityError, transaction

from controlplane.audit.services import ledger_append_control
from controlplane.core.errors import TollgateError
from controlplane.identity.errors import IdentityErrorCode
from controlplane.identity.models import ApproverGroup, ScimUser
from controlplane.identity.representations import group_body, version
from controlplane.identity.scim import errors
from controlplane.identity.scim.documents import precondition, validate
from controlplane.identity.scim.patch import apply_patch
from controlplane.identity.scim.schema import GROUP
from controlplane.identity.selectors import approver_count, scim_groups, scim_members_of_groups
from controlplane.tenancy import plan_limits
from controlplane.tenancy.models import Tenant

log = structlog.get_logger(__name__)
MAX_NAME = 150
MAX_EXTERNAL_ID = 255


def _members(tenant: Tenant, doc: dict) -> dict[str, int]:
    """SCIM user id -> Tollgate user id for every member the document names (all must be Users
    of this tenant; ids of other tenants are as unknown as made-up ones)."""
    wanted: list[str] = []
    for member in doc.get("members") or []:
        kind = member.get("type")
        if kind is not None and kind.lower() != "user":
            raise errors.invalid_value(
                f"members[].type {kind!r} is not supported: approver groups hold Users only."
            )
        value = member.get("value")
        if not value:
            raise errors.invalid_value("Every member needs a value (the id of a User).")
        wanted.append(value)
    # Locked so a user being deleted cannot become a member at the same moment.
    found = dict(
        ScimUser.objects.select_for_update()
        .filter(tenant=tenant, pk__in=wanted)
        .order_by("pk")
        .values_list("pk", "user_id")
    )
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise errors.invalid_value(
            f"members {missing} are not Users of this tenant. Create the users first "
            "(POST /Users) and use the id it returns."
        )
    return found


def _check_unique(tenant: Tenant, name: str, external_id: str, *, exclude: str | None) -> None:
    others = scim_groups(tenant_id=tenant.id).exclude(pk=exclude)
    if others.filter(name=name).exists():
        raise errors.uniqueness(
            f"displayName {name!r} is already an approver group of this tenant. Look it up "
            'with filter=displayName eq "..." and update that group instead.'
        )
    if external_id and others.filter(external_id=external_id).exists():
        raise errors.uniqueness(f"externalId {external_id!r} is already used in this tenant.")


def approver_group_members_set(*, group: ApproverGroup, user_ids: set[int]) -> tuple[list, list]:
    """Make the group's members exactly ``user_ids``; returns (added, removed) user ids.

    The one write path of group membership (admin, demo and SCIM), so the plan's ``approvers``
    limit is checked here for all of them: when someone joins, the tenant row is locked and
    the distinct approvers counted (402 ``PAYMENT_REQUIRED`` over the limit, the caller's
    transaction rolls back). Leaving is never refused: offboarding must always work.
    """
    current = set(group.members.values_list("pk", flat=True))
    added, removed = sorted(user_ids - current), sorted(current - user_ids)
    group.members.add(*added)
    group.members.remove(*removed)
    if added:
        plan_limits.enforce(
            tenant=group.tenant_id,
            limit="approvers",
            count=lambda: approver_count(tenant_id=group.tenant_id),
            adding=0,  # the new members are in the count already
        )
    return added, removed


def approver_group_record(
    *,
    group: ApproverGroup,
    created: bool,
    via: str,
    added: list,
    removed: list,
    renamed_from: str | None = None,
) -> None:
    """The ledger entry of one change to an approver group (who joined and who left)."""
    payload: dict[str, Any] = {
        "group": group.id,
        "name": group.name,
        "external_id": group.external_id,
        "via": via,
        "members_added": added,
        "members_removed": removed,
    }
    if renamed_from is not None and renamed_from != group.name:
        payload["renamed_from"] = renamed_from
    ledger_append_control(
        tenant_id=group.tenant_id,
        kind="approver_group.created" if created else "approver_group.updated",
        payload=payload,
    )
    log.info("approver_group_written", tenant=group.tenant_id, group=group.id, via=via)


def approver_group_save(
    *,
    tenant: Tenant,
    name: str,
    external_id: str = "",
    members: Iterable | None = None,
    group: ApproverGroup | None = None,
    via: str = "admin",
) -> ApproverGroup:
    """Create a group, or rename / re-key it; ``members`` (when given) replaces its members.

    The write path of the admin and the demo (SCIM documents go through ``_write``); one ledger
    entry names who joined and who left.
    """
    try:
        with transaction.atomic():
            if group is None:
                group = ApproverGroup.objects.create(
                    tenant=tenant, name=name, external_id=external_id
                )
                created, previous_name = True, None
            else:
                group = ApproverGroup.objects.select_for_update().get(pk=group.pk)
                created, previous_name = False, group.name
                group.name, group.external_id = name, external_id
                group.save(update_fields=["name", "external_id", "updated_at"])
            added, removed = [], []
            if members is not None:
                added, removed = approver_group_members_set(
                    group=group, user_ids={user.pk for user in members}
                )
            approver_group_record(
                group=group,
                created=created,
                via=via,
                added=added,
                removed=removed,
                renamed_from=previous_name,
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
def approver_group_delete(*, group: ApproverGroup, via: str = "admin") -> None:
    """Delete the approver group: routing that names it finds no approvers there any more."""
    members = sorted(group.members.values_list("pk", flat=True))
    group_id, name = group.pk, group.name
    ApproverGroup.objects.filter(pk=group_id).delete()
    ledger_append_control(
        tenant_id=group.tenant_id,
        kind="approver_group.deleted",
        payload={"group": group_id, "name": name, "via": via, "members": members},
    )
    log.info("approver_group_deleted", tenant=group.tenant_id, group=group_id, via=via)


def _write(group: ApproverGroup, doc: dict, *, created: bool) -> ApproverGroup:
    validate(GROUP, doc)
    tenant = group.tenant
    name, external_id = doc["displayName"], doc.get("externalId") or ""
    if len(name) > MAX_NAME or len(external_id) > MAX_EXTERNAL_ID:
        raise errors.invalid_value(
            f"displayName holds at most {MAX_NAME} characters, externalId {MAX_EXTERNAL_ID}."
        )
    _check_unique(tenant, name, external_id, exclude=None if created else group.pk)
    wanted = _members(tenant, doc)
    previous_name = group.name
    group.name, group.external_id = name, external_id
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError as exc:
        raise errors.uniqueness(
            "displayName or externalId is already used in this tenant."
        ) from exc
    # SCIM speaks for the members with a SCIM identity; the others (added by an operator) stay.
    visible = dict(
        ScimUser.objects.filter(tenant=tenant, user__approver_groups=group).values_list(
            "user_id", "pk"
        )
    )
    kept = set(group.members.values_list("pk", flat=True)) - set(visible)
    added, removed = approver_group_members_set(group=group, user_ids=kept | set(wanted.values()))
    approver_group_record(
        group=group,
        created=created,
        via="scim",
        added=added,
        removed=removed,
        renamed_from=previous_name,
    )
    return group


@transaction.atomic
def scim_group_create(*, tenant: Tenant, doc: dict) -> ApproverGroup:
    return _write(ApproverGroup(tenant=tenant), doc, created=True)


def _locked(tenant: Tenant, group_id: str, if_match: str | None) -> ApproverGroup:
    group = (
        scim_groups(tenant_id=tenant.id)
        .select_for_update(of=("self",))
        .select_related("tenant")
        .filter(pk=group_id)
        .first()
    )
    if group is None:
        raise errors.not_found("Group", group_id)
    if if_match is not None:
        members = scim_members_of_groups(tenant_id=tenant.id, group_ids=[group.pk])[group.pk]
        precondition(if_match, version(group_body(group, members, base="")))
    return group


def _document(group: ApproverGroup) -> dict:
    """The writable part of the group as SCIM shows it (the base of a PATCH)."""
    body = group_body(
        group,
        scim_members_of_groups(tenant_id=group.tenant_id, group_ids=[group.pk])[group.pk],
        base="",
    )
    return {k: v for k, v in body.items() if k not in ("schemas", "id")}


@transaction.atomic
def scim_group_replace(
    *, tenant: Tenant, group_id: str, doc: dict, if_match: str | None
) -> ApproverGroup:
    return _write(_locked(tenant, group_id, if_match), doc, created=False)


@transaction.atomic
def scim_group_patch(
    *, tenant: Tenant, group_id: str, body: Any, if_match: str | None
) -> ApproverGroup:
    group = _locked(tenant, group_id, if_match)
    return _write(group, apply_patch(GROUP, _document(group), body), created=False)


@transaction.atomic
def scim_group_delete(*, tenant: Tenant, group_id: str, if_match: str | None) -> None:
    """Delete the approver group (SCIM DELETE /Groups/{id})."""
    approver_group_delete(group=_locked(tenant, group_id, if_match), via="scim")
