"""Reads about approver groups used by the approval workflow (a higher layer)."""

from __future__ import annotations

from collections.abc import Iterable

from controlplane.identity.models import ApproverGroup


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
