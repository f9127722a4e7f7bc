"""Reads about approver groups used by the approval workflow (a higher layer)."""

from __future__ import annotations

from collections.abc import Iterable

from controlplane.identity.models import ApproverGroup


def user_group_names(*, tenant_id: str, user_id: int, names: Iterable[str]) -> set[str]:
    """Which of ``names`` are approver groups of this tenant that the user belongs to."""
    wanted = list(names)
    if not wanted or user_id is None:
        return set()
    return set(
        ApproverGroup.objects.filter(
            tenant_id=tenant_id, name__in=wanted, members__id=user_id
        ).values_list("name", flat=True)
    )
