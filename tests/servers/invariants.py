"""Money checks for a chaos run, printed as one JSON line (run against the private database).

python -m tests.servers.invariants

- counters: every budget period and grant counter equals the sum of its allocations
  (tests.enforcement.helpers.assert_money_invariants, soft limits allowed);
- ledger: for every period chain, the reserved amount the ledger accounts for (decisions
  recorded, minus the allocations of the reservations whose resolution it recorded) equals the
  counter, and every resolved reservation has exactly one resolution entry per chain;
- verify: every chain and checkpoint verifies;
- resolved_twice: reservations with more than one resolution entry on a chain (must be 0).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import django

RESOLUTIONS = (
    "reservation.committed",
    "reservation.released",
    "reservation.expired",
    "late_commit",
)


def check() -> dict:
    django.setup()
    from controlplane.audit.models import LedgerEntry
    from controlplane.audit.verify import verify_ledger
    from enforcement.models import BudgetPeriod, Reservation, ReservationAllocation
    from tests.enforcement.helpers import assert_money_invariants

    out: dict = {}
    try:
        assert_money_invariants(hard=False)
        out["counters"] = True
    except AssertionError as exc:
        out["counters"] = False
        out["counters_error"] = repr(exc)[:300]

    recorded = defaultdict(int)
    resolutions: Counter = Counter()
    for chain, kind, payload in LedgerEntry.objects.filter(chain__startswith="bp:").values_list(
        "chain", "kind", "payload"
    ):
        period = chain.split(":", 1)[1]
        if kind == "decision.recorded":
            recorded[period] += int(payload.get("reserved_delta", 0))
        elif kind in RESOLUTIONS:
            resolutions[(payload["reservation"], period)] += 1
    out["resolved_twice"] = sum(1 for n in resolutions.values() if n > 1)
    released = defaultdict(int)
    states = dict(Reservation.objects.values_list("id", "state"))
    missing = 0
    for alloc in ReservationAllocation.objects.exclude(budget_period_id=None):
        key = (alloc.reservation_id, alloc.budget_period_id)
        resolved = states[alloc.reservation_id] != "pending"
        if resolved != (resolutions[key] > 0):
            missing += 1
        if resolutions[key]:
            released[alloc.budget_period_id] += alloc.amount_micros
    out["resolution_entries_mismatch"] = missing
    mismatched = [
        p.id
        for p in BudgetPeriod.objects.all()
        if recorded[p.id] - released[p.id] != p.reserved_micros
    ]
    out["ledger_equals_counters"] = not mismatched and missing == 0
    out["ledger_mismatched_periods"] = mismatched[:5]
    out["verify"] = verify_ledger().ok
    out["reservations"] = dict(Counter(states.values()))
    return out


if __name__ == "__main__":
    print(json.dumps(check()))
