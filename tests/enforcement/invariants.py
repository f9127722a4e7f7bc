"""Money invariants checked by the concurrency and state-machine tests (real PostgreSQL rows)."""

from __future__ import annotations

from django.db.models import Sum

from controlplane.audit.verify import verify_ledger
from enforcement.models import BudgetPeriod, CreditGrant, ReservationAllocation


def _sum(queryset, field: str) -> int:
    return queryset.aggregate(total=Sum(field))["total"] or 0


def assert_money_invariants(tenant, *, hard: bool = True) -> None:
    """Counters equal the sums of their allocations; limits hold in hard mode; ledger verifies."""
    for period in BudgetPeriod.objects.filter(tenant=tenant):
        allocations = ReservationAllocation.objects.filter(budget_period=period)
        held = _sum(allocations.filter(reservation__state="pending"), "amount_micros")
        charged = _sum(
            allocations.filter(reservation__state__in=["committed", "invoiced"]), "charged_micros"
        )
        assert period.reserved_micros == held, (period.id, period.reserved_micros, held)
        assert period.spent_micros == charged, (period.id, period.spent_micros, charged)
        late = allocations.filter(reservation__late=True).exists()
        if hard and not late:
            assert period.spent_micros + period.reserved_micros <= period.limit_micros, period.id
    for grant in CreditGrant.objects.filter(tenant=tenant):
        allocations = ReservationAllocation.objects.filter(credit_grant=grant)
        held = _sum(allocations.filter(reservation__state="pending"), "amount_micros")
        charged = _sum(
            allocations.filter(reservation__state__in=["committed", "invoiced"]), "charged_micros"
        )
        assert 0 <= grant.remaining_micros <= grant.amount_micros, grant.id
        # voiding stops new draws only: the arithmetic holds for void grants too
        assert grant.remaining_micros == grant.amount_micros - held - charged, (
            grant.id,
            grant.remaining_micros,
            grant.amount_micros,
            held,
            charged,
        )
    report = verify_ledger(tenant_id=tenant.id)
    assert report.ok, report
