"""The one place that knows the lock order: budget periods by id, then credit grants by id.

Every transaction that changes a money counter takes its row locks through these helpers, so
two transactions can never wait on each other in a cycle. Reservations (when a lifecycle call
needs one) are locked before either.
"""

from __future__ import annotations

from collections.abc import Iterable

from enforcement.models import BudgetPeriod, CreditGrant


def lock_budget_periods(ids: Iterable[str]) -> dict[str, BudgetPeriod]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = BudgetPeriod.objects.select_for_update().filter(pk__in=wanted).order_by("id")
    return {row.id: row for row in rows}


def lock_grants(ids: Iterable[str]) -> dict[str, CreditGrant]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = CreditGrant.objects.select_for_update().filter(pk__in=wanted).order_by("id")
    return {row.id: row for row in rows}


def lock_drawable_grants(*, tenant_id: str, now) -> list[CreditGrant]:
    """Lock the grants a decision may draw from (``CreditGrant.objects.drawable``), in id order."""
    return list(
        CreditGrant.objects.filter(tenant_id=tenant_id)
        .drawable(now)
        .select_for_update()
        .order_by("id")
    )


def lock_current_periods(keys: Iterable[tuple[str, object]]) -> list[BudgetPeriod]:
    """Lock the periods identified by (budget_id, period_start), in id order."""
    from django.db.models import Q

    condition = Q()
    for budget_id, period_start in keys:
        condition |= Q(budget_id=budget_id, period_start=period_start)
    if not condition:
        return []
    return list(BudgetPeriod.objects.select_for_update().filter(condition).order_by("id"))
