"""Test helpers for enforcement: one place that knows where gate settings live.

Tests set modes, thresholds and TTL bounds through ``set_gate_settings`` only, so the settings
source (today ``TenantGateSettings``, later the policy document) is changed here alone.
"""

from __future__ import annotations

import uuid

from enforcement.models import Reservation, TenantGateSettings
from enforcement.services.gate import GateRequest, gate_decide


def set_gate_settings(tenant, **fields) -> None:
    """Update the tenant's gate settings (modes, fail_modes, approval_threshold_micros, ...)."""
    TenantGateSettings.objects.update_or_create(tenant=tenant, defaults=fields)


def hard_mode(tenant) -> None:
    set_gate_settings(tenant, modes={"*": {"prod": "hard", "nonprod": "hard"}})


def gate_service(tenant, *, micros: int, project="payments", environment="prod", key=None, **kw):
    """Call the gate service directly (no HTTP); returns the response body."""
    result = gate_decide(
        tenant=tenant,
        api_key=None,
        req=GateRequest(
            source=kw.pop("source", "api"),
            idempotency_key=key or uuid.uuid4().hex,
            project=project,
            environment=environment,
            estimated_micros=micros,
            **kw,
        ),
    )
    return result.response


def reservation_of(body) -> Reservation | None:
    if not body.get("reservation"):
        return None
    return Reservation.objects.get(pk=body["reservation"]["id"])


def assert_money_invariants(*, hard: bool = True) -> None:
    """Every counter equals the sum of its allocations; hard budgets are never overbooked.

    * ``BudgetPeriod.reserved`` == sum of its allocations on pending reservations.
    * ``BudgetPeriod.spent`` == sum of what committed/invoiced allocations were charged, plus
      reconciliation adjustments.
    * ``CreditGrant.remaining`` == amount - (pending holds + charged on committed ones), and
      stays within [0, amount].
    * In hard mode ``spent + reserved <= limit`` unless a late commit or an over-commit (both
      recorded in the ledger) or an invoice above the reported cost charged that period.
    """
    from collections import defaultdict

    from enforcement.models import BudgetPeriod, CreditGrant, ReservationAllocation

    reserved = defaultdict(int)
    spent = defaultdict(int)
    drawn = defaultdict(int)
    excused = set()
    allocations = ReservationAllocation.objects.select_related("reservation")
    for alloc in allocations:
        res = alloc.reservation
        if res.state == Reservation.State.PENDING:
            held = alloc.amount_micros
            charged = 0
        elif res.state in (Reservation.State.COMMITTED, Reservation.State.INVOICED):
            held = 0
            charged = alloc.charged_micros
        else:
            held = charged = 0
        if alloc.budget_period_id:
            reserved[alloc.budget_period_id] += held
            spent[alloc.budget_period_id] += charged
            adjustment = 0
            if res.state == Reservation.State.INVOICED:
                adjustment = res.invoiced_micros - res.reported_micros
                spent[alloc.budget_period_id] += adjustment
            if res.late or res.overage_micros or adjustment > 0:
                excused.add(alloc.budget_period_id)
        else:
            drawn[alloc.credit_grant_id] += held + charged
    for period in BudgetPeriod.objects.all():
        assert period.reserved_micros == reserved[period.id], (period.id, "reserved")
        assert period.spent_micros == spent[period.id], (period.id, "spent")
        assert period.reserved_micros >= 0 and period.spent_micros >= 0
        if hard and period.id not in excused:
            assert period.spent_micros + period.reserved_micros <= period.limit_micros, period.id
    for grant in CreditGrant.objects.all():
        assert 0 <= grant.remaining_micros <= grant.amount_micros, grant.id
        assert grant.remaining_micros == grant.amount_micros - drawn[grant.id], grant.id
