"""Reads about approver groups and SCIM identities (approval workflow, SCIM API, admin)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import QuerySet

from controlplane.identity.models import ApproverGroup, ScimToken, ScimUser

GroupMembership = ApproverGroup.members.through


def user_group_names(
    *, tenant_id: str, user_id: int | None, names: Iterable[str] | None = None
) -> set[str]:
    """The tenant's approver groups the user belongs to (only those in ``names`` when given)."""
    if user_id is None:
        return set()
    groups = ApproverGroup.objects.filter(tenant_id=tenant_id, members__id=user_id)
    if names is not None:
        wanted = list(names)
        if not wanted:
            return set()
        groups = groups.filter(name__in=wanted)
    return set(groups.values_list("name", flat=True))


def existing_group_names(*, tenant_id: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` are approver groups of this tenant."""
    wanted = list(names)
    if not wanted:
        return set()
    return set(
        ApproverGroup.objects.filter(tenant_id=tenant_id, name__in=wanted).values_list(
            "name", flat=True
        )
    )


def approver_count(
    *, tenant_id: str, exclude_group_id: str | None = None, extra_user_ids: Iterable[int] = ()
) -> int:
    """Distinct people in the tenant's approver groups (what the plan's ``approvers`` limit
    counts), leaving out one group and adding ``extra_user_ids`` (that group's new members)."""
    rows = GroupMembership.objects.filter(approvergroup__tenant_id=tenant_id)
    if exclude_group_id is not None:
        rows = rows.exclude(approvergroup_id=exclude_group_id)
    return len(set(rows.values_list("user_id", flat=True)) | set(extra_user_ids))


def scim_users(*, tenant_id: str) -> QuerySet[ScimUser]:
    """The tenant's SCIM users (every SCIM read starts here: tenant scoping in one place)."""
    return ScimUser.objects.for_tenant(tenant_id)


def scim_tokens(*, tenant_id: str) -> QuerySet[ScimToken]:
    """The tenant's SCIM tokens, newest first, with who created them."""
    return (
        ScimToken.objects.for_tenant(tenant_id)
        .select_related("created_by")
        .order_by("-created_at", "id")
    )


def scim_groups(*, tenant_id: str) -> QuerySet[ApproverGroup]:
    """The tenant's approver groups as SCIM Groups."""
    return ApproverGroup.objects.for_tenant(tenant_id)


def groups_of_users(*, tenant_id: str, user_ids: Iterable[int]) -> dict[int, list[tuple[str, str]]]:
    """(group id, name) of the tenant's approver groups, per Tollgate user id, in one query."""
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    rows = (
        GroupMembership.objects.filter(
            user_id__in=list(user_ids), approvergroup__tenant_id=tenant_id
        )
        .order_by("approvergroup__name", "approvergroup_id")
        .values_list("user_id", "approvergroup_id", "approvergroup__name")
    )
    for user_id, group_id, name in rows:
        out[user_id].append((group_id, name))
    return out


def scim_members_of_groups(*, tenant_id: str, group_ids: Iterable[str]) -> dict[str, list[str]]:
    """SCIM user ids of each group's members (two queries, whatever the group count).

    Members an operator added in the admin who have no SCIM identity in the tenant are not SCIM
    members: the identity provider neither sees nor removes them.
    """
    pairs = list(
        GroupMembership.objects.filter(
            approvergroup_id__in=list(group_ids), approvergroup__tenant_id=tenant_id
        ).values_list("approvergroup_id", "user_id")
    )
    scim_ids = dict(
        ScimUser.objects.filter(
            tenant_id=tenant_id, user_id__in={user_id for _, user_id in pairs}
        ).values_list("user_id", "id")
    )
    out: dict[str, list[str]] = defaultdict(list)
    for group_id, user_id in pairs:
        if user_id in scim_ids:
            out[group_id].append(scim_ids[user_id])
    for members in out.values():
        members.sort()
    return out
