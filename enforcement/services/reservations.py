"""Reservation lifecycle: commit (incl. late commit), release, extend, expire, reconcile.

Lock order: the reservation row, then its budget periods by id, then its grants by id
(``services.locking``). A reservation resolves once; every change writes ledger entries on the
chains of the budget periods it touches, in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from django.db import transaction
from django.db.models import F

from controlplane.audit.chain import budget_period_chain, control_chain
from controlplane.audit.outbox import outbox_enqueue
from controlplane.audit.services import ledger_append
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.money import format_usd
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import (
    APPROVALS_RESOLVED,
    INVARIANT_VIOLATIONS,
    LATE_COMMITS,
    RESERVATIONS_EXPIRED,
)
from enforcement.models import (
    ApprovalRequest,
    BudgetPeriod,
    CreditGrant,
    Reservation,
    ReservationAllocation,
    SpendRollup,
)
from enforcement.services.alerts import alert_hint_after_commit
from enforcement.services.locking import lock_budget_periods, lock_grants

log = structlog.get_logger(__name__)
State = Reservation.State


def _lock_reservation(reservation_id: str) -> Reservation:
    return Reservation.objects.select_for_update().select_related("decision").get(pk=reservation_id)


def _resolved_error(reservation: Reservation) -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.RESERVATION_RESOLVED,
        f"Reservation {reservation.id} is already {reservation.state}.",
        remediation="A reservation resolves once; gate a new request for new spend.",
        status=409,
        extra={"state": reservation.state},
    )


def _allocations(reservation: Reservation) -> list[ReservationAllocation]:
    return list(reservation.allocations.order_by("position"))


def _lock_sources(allocations):
    periods = lock_budget_periods(a.budget_period_id for a in allocations if a.budget_period_id)
    grants = lock_grants(a.credit_grant_id for a in allocations if a.credit_grant_id)
    return periods, grants


def _chains_for(reservation: Reservation, allocations) -> list[str]:
    chains = sorted(
        {budget_period_chain(a.budget_period_id) for a in allocations if a.budget_period_id}
    )
    return chains or [control_chain(reservation.tenant_id)]


def _ledger(reservation, allocations, kind: str, payload: dict[str, Any]) -> None:
    for chain in _chains_for(reservation, allocations):
        ledger_append(
            tenant_id=reservation.tenant_id,
            chain=chain,
            kind=kind,
            payload={"reservation": reservation.id, "decision": reservation.decision_id, **payload},
        )


def _unwind(allocations) -> None:
    """Give back everything still held: budgets' reserved down, grants' remaining up."""
    for alloc in allocations:
        if alloc.budget_period_id:
            BudgetPeriod.objects.filter(pk=alloc.budget_period_id).update(
                reserved_micros=F("reserved_micros") - alloc.amount_micros
            )
        else:
            CreditGrant.objects.filter(pk=alloc.credit_grant_id).update(
                remaining_micros=F("remaining_micros") + alloc.amount_micros
            )


def _split_charge(allocations, actual: int) -> tuple[dict[int, int], int]:
    """How much of ``actual`` each allocation carries: budgets first, then credits in burn order.

    Budget allocations all carry the same budget-funded amount (nested scopes count the same
    spend); credits cover the rest in the order they were drawn. Returns (charge per allocation
    pk, overage beyond everything that was held).
    """
    budget_allocs = [a for a in allocations if a.budget_period_id]
    credit_allocs = [a for a in allocations if a.credit_grant_id]
    from_budget = max((a.amount_micros for a in budget_allocs), default=0)
    budget_part = min(actual, from_budget)
    charges = {a.pk: min(budget_part, a.amount_micros) for a in budget_allocs}
    left = actual - budget_part
    for alloc in credit_allocs:
        take = min(left, alloc.amount_micros)
        charges[alloc.pk] = take
        left -= take
    return charges, left


def _roll_up(reservation: Reservation, amount: int, day) -> None:
    if amount == 0:
        return
    decision = reservation.decision
    SpendRollup.objects.bulk_create(
        [
            SpendRollup(
                tenant_id=reservation.tenant_id,
                project_id=decision.project_id,
                environment=decision.environment,
                day=day,
                spent_micros=0,
            )
        ],
        ignore_conflicts=True,
    )
    SpendRollup.objects.filter(
        tenant_id=reservation.tenant_id,
        project_id=decision.project_id,
        environment=decision.environment,
        day=day,
    ).update(spent_micros=F("spent_micros") + amount)


def reservation_commit(
    *, reservation_id: str, actual_micros: int, usage: dict | None = None
) -> tuple[Reservation, dict]:
    """Record real spend. Pending: charge and release the remainder. Expired: late commit."""
    with transaction.atomic():
        # Lock order: approval row -> reservation -> budget periods -> grants (as approvals do).
        approval = (
            ApprovalRequest.objects.select_for_update()
            .filter(reservation_id=reservation_id, state=ApprovalRequest.State.PENDING)
            .first()
        )
        reservation = _lock_reservation(reservation_id)
        if reservation.state not in (State.PENDING, State.EXPIRED):
            raise _resolved_error(reservation)
        late = reservation.state == State.EXPIRED
        allocations = _allocations(reservation)
        periods, grants = _lock_sources(allocations)
        now = db_now()
        charges, overage = _split_charge(allocations, actual_micros)
        budget_allocs = [a for a in allocations if a.budget_period_id]
        if late:
            # The hold was already given back at expiry: charge the spend straight to the same
            # budgets and grants, even past a limit (real money must not be lost).
            # A grant voided, expired or emptied since the hold lapsed takes nothing: the spend
            # lands on the budgets as overage instead of on credit nobody may draw.
            drawable = set(
                CreditGrant.objects.filter(pk__in=list(grants))
                .drawable(now)
                .values_list("id", flat=True)
            )
            for alloc in allocations:
                if alloc.credit_grant_id:
                    grant = grants[alloc.credit_grant_id]
                    usable = grant.id in drawable
                    take = min(charges[alloc.pk], grant.remaining_micros) if usable else 0
                    overage += charges[alloc.pk] - take
                    charges[alloc.pk] = take
                    grant.remaining_micros -= take
                    CreditGrant.objects.filter(pk=grant.pk).update(
                        remaining_micros=F("remaining_micros") - take
                    )
        else:
            for alloc in allocations:
                if alloc.credit_grant_id and alloc.amount_micros > charges[alloc.pk]:
                    # Unused credit goes back.
                    CreditGrant.objects.filter(pk=alloc.credit_grant_id).update(
                        remaining_micros=F("remaining_micros")
                        + alloc.amount_micros
                        - charges[alloc.pk]
                    )
        for alloc in budget_allocs:
            # Overage lands on every budget that held the request (each scope saw the spend).
            # One statement per period: the hold goes (unless it lapsed already) as the
            # spend lands.
            charge = charges[alloc.pk] + overage
            charges[alloc.pk] = charge
            changes = {"spent_micros": F("spent_micros") + charge}
            if not late:
                changes["reserved_micros"] = F("reserved_micros") - alloc.amount_micros
            BudgetPeriod.objects.filter(pk=alloc.budget_period_id).update(**changes)
        for alloc in allocations:
            alloc.charged_micros = charges[alloc.pk]
        ReservationAllocation.objects.bulk_update(allocations, ["charged_micros"])
        alert_hint_after_commit(periods, {a.budget_period_id: charges[a.pk] for a in budget_allocs})
        over = max(actual_micros - reservation.amount_micros, 0)
        reservation.state = State.COMMITTED
        reservation.reported_micros = actual_micros
        reservation.overage_micros = over
        reservation.late = late
        reservation.usage = usage or {}
        reservation.resolved_at = now
        reservation.save(
            update_fields=[
                "state",
                "reported_micros",
                "overage_micros",
                "late",
                "usage",
                "resolved_at",
            ]
        )
        _roll_up(reservation, actual_micros, now.date())
        payload = {
            "actual": actual_micros,
            "reserved": reservation.amount_micros,
            "charges": {str(a.ref): charges[a.pk] for a in allocations},
            "late": late,
        }
        _ledger(
            reservation, allocations, "late_commit" if late else "reservation.committed", payload
        )
        if over:
            _ledger(
                reservation,
                allocations,
                "invariant_violation",
                {
                    "kind": "over_commit",
                    "actual": actual_micros,
                    "reserved": reservation.amount_micros,
                },
            )
        if approval is not None:
            # Spent while the approval was still open: the spend is recorded like any other
            # (money was spent), flagged, and the request closes: nothing is left to approve.
            from enforcement.services.approvals import approval_close_committed

            _ledger(
                reservation,
                allocations,
                "invariant_violation",
                {"kind": "commit_before_approval", "approval": approval.id},
            )
            approval_close_committed(approval=approval, now=now)
        outbox_enqueue(
            tenant_id=reservation.tenant_id,
            event_type="reservation.committed",
            payload={
                "reservation_id": reservation.id,
                "decision_id": reservation.decision_id,
                "actual_cost_usd": format_usd(actual_micros),
                "late": late,
            },
        )
    if late:
        LATE_COMMITS.inc()
        log.warning("late_commit", reservation=reservation.id, actual=actual_micros)
    if over:
        INVARIANT_VIOLATIONS.inc()
        log.error(
            "invariant_violation",
            kind="over_commit",
            reservation=reservation.id,
            actual=actual_micros,
            reserved=reservation.amount_micros,
        )
    if approval is not None:
        INVARIANT_VIOLATIONS.inc()
        APPROVALS_RESOLVED.labels(state=ApprovalRequest.State.CANCELLED).inc()
        log.error(
            "invariant_violation",
            kind="commit_before_approval",
            reservation=reservation.id,
            approval=approval.id,
            actual=actual_micros,
        )
    return reservation, {
        "late": late,
        "overage_micros": over,
        "approval_cancelled": approval.id if approval is not None else None,
    }


def reservation_release(*, reservation_id: str) -> Reservation:
    """Give the whole hold back; only a pending reservation can be released."""
    with transaction.atomic():
        reservation = _lock_reservation(reservation_id)
        if reservation.state != State.PENDING:
            raise _resolved_error(reservation)
        allocations = _allocations(reservation)
        _lock_sources(allocations)
        _unwind(allocations)
        reservation.state = State.RELEASED
        reservation.resolved_at = db_now()
        reservation.save(update_fields=["state", "resolved_at"])
        _ledger(
            reservation, allocations, "reservation.released", {"amount": reservation.amount_micros}
        )
        outbox_enqueue(
            tenant_id=reservation.tenant_id,
            event_type="reservation.released",
            payload={"reservation_id": reservation.id, "decision_id": reservation.decision_id},
        )
    return reservation


def reservation_extend(
    *, reservation_id: str, ttl_seconds: int, max_ttl_seconds: int
) -> Reservation:
    """Push ``expires_at`` to now + ttl; a reservation past its expiry cannot be revived."""
    with transaction.atomic():
        reservation = _lock_reservation(reservation_id)
        now = db_now()
        if reservation.state == State.EXPIRED or (
            reservation.state == State.PENDING and reservation.expires_at <= now
        ):
            raise TollgateError(
                EnforcementErrorCode.RESERVATION_EXPIRED,
                f"Reservation {reservation.id} expired at {reservation.expires_at.isoformat()}.",
                remediation="Gate the request again; a late commit is still accepted.",
                status=409,
            )
        if reservation.state != State.PENDING:
            raise _resolved_error(reservation)
        if not 1 <= ttl_seconds <= max_ttl_seconds:
            raise TollgateError(
                EnforcementErrorCode.TTL_OUT_OF_RANGE,
                f"ttl_seconds must be between 1 and {max_ttl_seconds}.",
                errors=[{"field": "ttl_seconds", "message": "Out of range.", "code": "invalid"}],
            )
        reservation.expires_at = now + timedelta(seconds=ttl_seconds)
        reservation.save(update_fields=["expires_at"])
        allocations = _allocations(reservation)
        _lock_sources(allocations)
        _ledger(
            reservation,
            allocations,
            "reservation.extended",
            {"expires_at": reservation.expires_at.isoformat()},
        )
    return reservation


def reservations_expire(*, batch: int = 200) -> int:
    """Expire one batch of overdue pending reservations, oldest first; safe on N workers."""
    with transaction.atomic():
        now = db_now()
        due = list(
            Reservation.objects.select_for_update(skip_locked=True)
            .filter(state=State.PENDING, expires_at__lt=now)
            .order_by("expires_at", "id")[:batch]
        )
        if not due:
            return 0
        allocations = list(
            ReservationAllocation.objects.filter(reservation__in=due).order_by(
                "reservation_id", "position"
            )
        )
        _lock_sources(allocations)  # all periods then all grants, each in id order
        by_reservation: dict[str, list[ReservationAllocation]] = {}
        for alloc in allocations:
            by_reservation.setdefault(alloc.reservation_id, []).append(alloc)
        for reservation in due:
            allocs = by_reservation.get(reservation.id, [])
            _unwind(allocs)
            _ledger(
                reservation, allocs, "reservation.expired", {"amount": reservation.amount_micros}
            )
            outbox_enqueue(
                tenant_id=reservation.tenant_id,
                event_type="reservation.expired",
                payload={"reservation_id": reservation.id, "decision_id": reservation.decision_id},
            )
        Reservation.objects.filter(pk__in=[r.pk for r in due]).update(
            state=State.EXPIRED, resolved_at=now
        )
    RESERVATIONS_EXPIRED.inc(len(due))
    return len(due)


def reservation_reconcile(
    *, reservation_id: str, invoiced_micros: int, external_ref: str = ""
) -> Reservation:
    """Match a committed reservation to the bill; the difference is posted to its budgets."""
    with transaction.atomic():
        reservation = _lock_reservation(reservation_id)
        if reservation.state != State.COMMITTED:
            if reservation.state == State.INVOICED:
                raise _resolved_error(reservation)
            raise TollgateError(
                EnforcementErrorCode.RESERVATION_NOT_COMMITTED,
                f"Reservation {reservation.id} is {reservation.state}; only committed ones can be invoiced.",
                remediation="Commit the actual cost first.",
                status=409,
            )
        allocations = _allocations(reservation)
        periods, _ = _lock_sources(allocations)
        now = db_now()
        delta = invoiced_micros - reservation.reported_micros
        applied_to: dict[str, int] = {}
        for alloc in allocations:
            if alloc.budget_period_id and delta:
                period = periods[alloc.budget_period_id]
                applied = max(delta, -period.spent_micros)  # a refund never drives spent below zero
                applied_to[period.pk] = applied
                BudgetPeriod.objects.filter(pk=period.pk).update(
                    spent_micros=F("spent_micros") + applied
                )
        alert_hint_after_commit(periods, applied_to)
        # The difference belongs to the day the spend was reported (and to the same budget
        # periods as above), not to the day the bill arrived: a refund then never drives a
        # day's rollup below zero, and a bill for last month corrects last month.
        _roll_up(reservation, delta, reservation.resolved_at.date())
        reservation.state = State.INVOICED
        reservation.invoiced_micros = invoiced_micros
        reservation.external_ref = external_ref
        reservation.invoiced_at = now
        reservation.save(update_fields=["state", "invoiced_micros", "external_ref", "invoiced_at"])
        _ledger(
            reservation,
            allocations,
            "reservation.invoiced",
            {
                "invoiced": invoiced_micros,
                "reported": reservation.reported_micros,
                "adjustment": delta,
            },
        )
    return reservation


def reservations_reconcile_batch(*, reservations, items: list[dict]) -> dict[str, Any]:
    """Invoice each item on its own (one failure never undoes another): the batch result.

    ``reservations`` is the caller's tenant-scoped queryset: an id outside it is ``NOT_FOUND``
    (never revealing another tenant's reservation).
    """
    ids = [item["reservation_id"] for item in items]
    owned = set(reservations.filter(pk__in=ids).values_list("id", flat=True))
    results = []
    for index, item in enumerate(items):
        rid = item["reservation_id"]
        if rid not in owned:
            results.append({"reservation_id": rid, "status": "error", "code": "NOT_FOUND"})
            continue
        try:
            reservation = reservation_reconcile(
                reservation_id=rid,
                invoiced_micros=item["invoiced_cost_usd"],
                external_ref=item.get("external_ref", ""),
            )
        except TollgateError as exc:
            results.append(
                {
                    "reservation_id": rid,
                    "status": "error",
                    "code": exc.code,
                    "detail": exc.message,
                    "index": index,
                }
            )
            continue
        results.append(
            {
                "reservation_id": rid,
                "status": "invoiced",
                "invoiced_cost_usd": format_usd(reservation.invoiced_micros),
                "adjustment_usd": format_usd(
                    reservation.invoiced_micros - reservation.reported_micros
                ),
            }
        )
    ok = sum(1 for r in results if r["status"] == "invoiced")
    return {"invoiced": ok, "failed": len(results) - ok, "results": results}


def reservations_release_held(*, reservation_ids, reason: str) -> list[str]:
    """Release those of these reservations still pending, in the caller's transaction.

    Used when an approval is denied, expires or is cancelled. Locks the reservations by id, then
    all their budget periods and grants in the one global order; returns the ids released.
    """
    ids = sorted(set(reservation_ids))
    if not ids:
        return []
    held = list(
        Reservation.objects.select_for_update()
        .filter(pk__in=ids, state=State.PENDING)
        .order_by("id")
    )
    if not held:
        return []
    allocations = list(
        ReservationAllocation.objects.filter(reservation__in=held).order_by(
            "reservation_id", "position"
        )
    )
    _lock_sources(allocations)
    by_reservation: dict[str, list[ReservationAllocation]] = {}
    for alloc in allocations:
        by_reservation.setdefault(alloc.reservation_id, []).append(alloc)
    now = db_now()
    for reservation in held:
        allocs = by_reservation.get(reservation.id, [])
        _unwind(allocs)
        _ledger(
            reservation,
            allocs,
            "reservation.released",
            {"amount": reservation.amount_micros, "reason": reason},
        )
        outbox_enqueue(
            tenant_id=reservation.tenant_id,
            event_type="reservation.released",
            payload={
                "reservation_id": reservation.id,
                "decision_id": reservation.decision_id,
                "reason": reason,
            },
        )
    Reservation.objects.filter(pk__in=[r.pk for r in held]).update(
        state=State.RELEASED, resolved_at=now
    )
    return [r.id for r in held]
