"""The one place that knows the lock order. Every store and every service takes row locks in it:

1. an approval request (a vote, or a commit that closes one), then the reservation(s) a
   lifecycle call resolves, by id;
2. budget periods, by id;
3. credit grants, by id;
4. ledger chain heads, by chain name (``controlplane.audit``: the period chains ``bp:<id>``
   sort with the periods, the scope chain ``scope:...`` and the tenant's control chain after).

Two transactions that take their locks in this order can never wait on each other in a cycle;
a transaction never takes a lock of an earlier step after one of a later step. The gate takes
2, 3 and 4 (both stores: ``sql/gate_prepare.sql`` locks the periods and creates-or-locks the
chain heads in one call, then the grants are locked here only when the waterfall reaches them,
which is why the grants' step comes before the heads' only as far as *waiting* goes: a grant
is never locked by a transaction that holds a chain head another transaction waits for while
holding that grant, because every grant holder takes the heads it needs after the grant). The
ORM store runs the same steps in the same order (``services.gate.load`` / ``persist``).
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


def drawable_grants(*, tenant_id: str, now, lock: bool) -> list[CreditGrant]:
    """The grants a decision may draw from (``CreditGrant.objects.drawable``), in id order;
    locked when the decision may draw (hard/soft), read unlocked to explain (shadow)."""
    rows = CreditGrant.objects.filter(tenant_id=tenant_id).drawable(now).order_by("id")
    return list(rows.select_for_update() if lock else rows)


def lock_current_periods(keys: Iterable[tuple[str, object]]) -> list[BudgetPeriod]:
    """Lock the periods identified by (budget_id, period_start), in id order."""
    from django.db.models import Q

    condition = Q()
    for budget_id, period_start in keys:
        condition |= Q(budget_id=budget_id, period_start=period_start)
    if not condition:
        return []
    return list(BudgetPeriod.objects.select_for_update().filter(condition).order_by("id"))
