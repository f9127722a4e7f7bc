"""The one place that knows the lock order. Every store and every service takes row locks in it:

1. an approval request (a vote, or a commit that closes one), then reservations, by id;
2. budget periods, by id;
3. the ledger chain heads of the rows locked in step 2 (``bp:<period id>``) or, for a decision
   no budget covers, its scope chain (``scope:<project>:<environment>``), by chain name;
4. credit grants, by id;
5. the tenant's control chain head (``control:<tenant>``).

A transaction may skip steps but never goes back to an earlier one, so two transactions can
never wait on each other in a cycle. One refinement keeps the reservation services simple: the
head of a period's chain is only ever locked by a transaction that already holds that period
(step 2), so nobody can wait for it while holding anything else; the lifecycle services
(``services.reservations``) may therefore append to period chains after locking grants.

The gate runs steps 2, 3, 4 (and 5 for an approval) in both stores with the same algorithm:
``services.gate.load`` locks the current periods and creates-or-locks the chain heads (the SQL
store in one call, ``sql/gate_prepare.sql``), ``services.gate.decide`` locks the drawable
grants only when the waterfall may reach them, ``services.gate.persist`` writes, and an
approval opens on the control chain last.
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
