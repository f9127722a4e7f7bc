"""The persist seam: write a decided decision, in the transaction that locked its rows.

PostgreSQL writes every row in one function call (``sql/gate_write.sql``); the ORM store writes
the same rows in the same order. Every row it updates was locked by ``load``/``decide`` (the
order of ``services.locking``); only an approval takes a new lock, the control chain, last.
"""

from __future__ import annotations

import json
from datetime import date, datetime

from django.db import connection
from django.db.models import F

from controlplane.audit.services import ledger_entries_write, next_entry
from enforcement.models import BudgetPeriod, CreditGrant, ReservationAllocation
from enforcement.services import approvals
from enforcement.services.gate.decide import Decided
from enforcement.services.gate.load import Loaded, use_sql_functions


def persist(decided: Decided, loaded: Loaded) -> None:
    """Write the decision, its reservation, the counters, ledger entries and outbox event."""
    entries = [
        next_entry(
            decided.decision.tenant_id,
            chain,
            "decision.recorded",
            payload,
            *loaded.heads[chain],
            decided.decision.created_at,
        )
        for chain, payload in decided.ledger
    ]
    if use_sql_functions():
        _write_sql(decided, entries)
    else:
        _write_orm(decided, entries)
    if decided.approval is not None:
        approvals.approval_open(approval=decided.approval)  # control chain after period chains


def _write_orm(decided: Decided, entries) -> None:
    """The same rows in the same order as ``sql/gate_write.sql``."""
    decision, reservation = decided.decision, decided.reservation
    decision.save(force_insert=True)
    if reservation is not None:
        reservation.save(force_insert=True)
        ReservationAllocation.objects.bulk_create(decided.allocations)
    for draw in decided.outcome.draws:
        if draw.kind == "budget":
            BudgetPeriod.objects.filter(pk=draw.ref).update(
                reserved_micros=F("reserved_micros") + draw.amount
            )
        else:
            CreditGrant.objects.filter(pk=draw.ref).update(
                remaining_micros=F("remaining_micros") - draw.amount
            )
    ledger_entries_write(entries)
    decided.event.save(force_insert=True)


def _jsonable(value):
    if isinstance(value, datetime | date):
        return value.isoformat()  # full microseconds: ledger hashes cover them
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _row(instance) -> dict:
    """A model instance as {column: value} for ``jsonb_populate_record`` (every column)."""
    return {f.column: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


_WRITE_SQL = "SELECT tollgate_gate_write(%s::jsonb)"


def _write_sql(decided: Decided, entries) -> None:
    """PostgreSQL: every row of the decision in one function call (one round trip)."""
    decision, reservation, draws = decided.decision, decided.reservation, decided.outcome.draws
    ledger = [_row(entry) for entry in entries]
    body = {
        "decision": _row(decision),
        "reservation": _row(reservation) if reservation is not None else None,
        "allocations": [_row(a) for a in decided.allocations],
        "budget_draws": [{"id": d.ref, "amount": d.amount} for d in draws if d.kind == "budget"],
        "credit_draws": [{"id": d.ref, "amount": d.amount} for d in draws if d.kind == "credit"],
        "ledger": ledger,
        "outbox": _row(decided.event),
    }
    with connection.cursor() as cursor:
        cursor.execute(_WRITE_SQL, [json.dumps(body, default=_jsonable, separators=(",", ":"))])
    for instance in (decision, reservation, decided.event, *decided.allocations):
        if instance is not None:
            instance._state.adding = False
            instance._state.db = connection.alias
