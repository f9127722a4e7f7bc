"""Real PostgreSQL, real threads: money is never double-booked and resolves exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controlplane.audit.verify import verify_ledger
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from enforcement.models import BudgetPeriod, CreditGrant, Decision, Reservation
from enforcement.services.reservations import (
    reservation_commit,
    reservation_release,
    reservations_expire,
)
from tests import factories
from tests.concurrency.threads import run_threads
from tests.enforcement.helpers import (
    assert_money_invariants,
    gate_service,
    hard_mode,
    set_gate_settings,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_stores]
THREADS = 64


@pytest.fixture
def acme():
    tenant = factories.make_tenant("acme")
    project = factories.make_project(tenant, "payments")
    hard_mode(tenant)
    return tenant, project


def _no_errors(results):
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]


def test_64_distinct_requests_never_overbook_a_hard_budget(acme):
    tenant, project = acme
    factories.make_budget(tenant, "150.00")
    tight = factories.make_budget(tenant, "100.00", project=project)
    factories.make_budget(tenant, "200.00", project=project, environment="prod")

    results = run_threads(THREADS, lambda i: gate_service(tenant, micros=3_000_000))
    _no_errors(results)
    outcomes = [r["outcome"] for r in results]
    assert outcomes.count("ALLOW") == 33 and outcomes.count("DENY") == THREADS - 33
    period = BudgetPeriod.objects.get(budget=tight)
    assert period.reserved_micros == 99_000_000 <= period.limit_micros
    assert Reservation.objects.count() == 33
    assert Decision.objects.count() == THREADS
    assert_money_invariants()
    assert verify_ledger(tenant_id=tenant.id).ok


def test_credits_never_go_below_zero(acme):
    tenant, project = acme
    factories.make_budget(tenant, "0.00", project=project)
    reserved = factories.make_grant(tenant, "20.00", priority=1)
    emergency = factories.make_grant(tenant, "11.00", pool="emergency")

    results = run_threads(THREADS, lambda i: gate_service(tenant, micros=1_000_000))
    _no_errors(results)
    outcomes = [r["outcome"] for r in results]
    assert outcomes.count("ALLOW_WITH_CREDITS") == 31
    assert outcomes.count("DENY") == THREADS - 31
    for grant in (reserved, emergency):
        grant.refresh_from_db()
        assert grant.remaining_micros == 0
    assert_money_invariants()
    assert CreditGrant.objects.filter(remaining_micros__lt=0).count() == 0


def test_same_idempotency_key_from_many_threads_is_one_decision(acme):
    tenant, project = acme
    budget = factories.make_budget(tenant, "100.00", project=project)

    results = run_threads(32, lambda i: gate_service(tenant, micros=5_000_000, key="deploy-42"))
    _no_errors(results)
    assert Decision.objects.count() == 1 and Reservation.objects.count() == 1
    assert len({r["decision_id"] for r in results}) == 1
    assert sum(1 for r in results if not r["idempotent_replay"]) == 1
    assert BudgetPeriod.objects.get(budget=budget).reserved_micros == 5_000_000
    assert_money_invariants()


def test_same_key_different_body_races_to_one_winner(acme):
    tenant, project = acme
    factories.make_budget(tenant, "100.00", project=project)

    results = run_threads(16, lambda i: gate_service(tenant, micros=(1 + i) * 1_000_000, key="k"))
    winners = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, TollgateError)]
    assert Decision.objects.count() == 1
    assert len(conflicts) >= 14 and all(c.code == "IDEMPOTENCY_KEY_REUSED" for c in conflicts)
    assert len(winners) + len(conflicts) == 16
    assert_money_invariants()


def _pending_reservations(tenant, count, micros=1_000_000) -> list[str]:
    return [gate_service(tenant, micros=micros)["reservation"]["id"] for _ in range(count)]


def _overdue(ids) -> None:
    Reservation.objects.filter(pk__in=ids).update(expires_at=db_now() - timedelta(seconds=1))


def test_mixed_commit_release_expiry_and_new_requests(acme):
    tenant, project = acme
    budget = factories.make_budget(tenant, "60.00", project=project)
    grant = factories.make_grant(tenant, "10.00")
    ids = _pending_reservations(tenant, 48)  # 48 of 60 reserved
    to_commit, to_release, to_expire = ids[:16], ids[16:32], ids[32:]
    _overdue(to_expire)

    def work(i):
        if i < 16:
            return reservation_commit(reservation_id=to_commit[i], actual_micros=500_000)[0].state
        if i < 32:
            return reservation_release(reservation_id=to_release[i - 16]).state
        if i < 40:
            return ("swept", reservations_expire(batch=3))
        return gate_service(tenant, micros=1_500_000)["outcome"]

    results = run_threads(THREADS, work)
    _no_errors(results)
    assert results[:16] == ["committed"] * 16
    assert results[16:32] == ["released"] * 16
    # Sweepers ran while gates were deciding: sweep whatever is still due, then check.
    reservations_expire()
    assert sum(r[1] for r in results[32:40]) <= 16
    assert Reservation.objects.filter(pk__in=to_expire, state="expired").count() == 16
    assert_money_invariants()
    period = BudgetPeriod.objects.get(budget=budget)
    assert period.spent_micros == 8_000_000
    assert period.spent_micros + period.reserved_micros <= period.limit_micros
    grant.refresh_from_db()
    assert 0 <= grant.remaining_micros <= grant.amount_micros
    assert verify_ledger(tenant_id=tenant.id).ok


def test_a_reservation_resolves_exactly_once(acme):
    tenant, project = acme
    factories.make_budget(tenant, "100.00", project=project)
    targets = _pending_reservations(tenant, 4, micros=2_000_000)

    def work(i):
        rid = targets[i % len(targets)]
        if i % 2:
            return reservation_commit(reservation_id=rid, actual_micros=1_000_000)[0].state
        return reservation_release(reservation_id=rid).state

    results = run_threads(32, work)
    wins = [r for r in results if isinstance(r, str)]
    losses = [r for r in results if isinstance(r, TollgateError)]
    assert len(wins) == len(targets) and len(losses) == 32 - len(targets)
    assert {loss.code for loss in losses} == {"RESERVATION_RESOLVED"}
    assert_money_invariants()


def test_concurrent_sweepers_expire_each_reservation_once(acme):
    tenant, project = acme
    factories.make_budget(tenant, "100.00", project=project)
    ids = _pending_reservations(tenant, 30)
    _overdue(ids)

    results = run_threads(8, lambda i: reservations_expire(batch=4) + reservations_expire(batch=4))
    _no_errors(results)
    reservations_expire()
    assert Reservation.objects.filter(state="expired").count() == 30
    assert_money_invariants()
    from controlplane.audit.models import LedgerEntry

    assert LedgerEntry.objects.filter(kind="reservation.expired").count() == 30
    assert verify_ledger(tenant_id=tenant.id).ok


def test_commit_racing_the_sweeper_is_charged_once(acme):
    tenant, project = acme
    budget = factories.make_budget(tenant, "100.00", project=project)
    ids = _pending_reservations(tenant, 8, micros=5_000_000)
    _overdue(ids)

    def work(i):
        if i < 8:
            return reservation_commit(reservation_id=ids[i], actual_micros=4_000_000)[1]["late"]
        return reservations_expire(batch=2)

    results = run_threads(16, work)
    _no_errors(results)
    assert Reservation.objects.filter(pk__in=ids, state="committed").count() == 8
    late = sum(1 for r in results[:8] if r)
    assert sum(results[8:]) == late  # the sweeper won exactly those the commit found expired
    period = BudgetPeriod.objects.get(budget=budget)
    assert period.spent_micros == 32_000_000 and period.reserved_micros == 0
    assert_money_invariants()


def test_soft_mode_draws_credits_under_lock_ten_drawn_no_errors():
    """Soft mode draws credits when nothing is breached, so it must lock them like hard mode.

    14 projects with 0 USD budgets, one 10 USD grant, 28 threads x 1 USD: exactly 10 calls are
    paid by the grant, the other 18 are soft breaches (allowed, flagged), and no call fails.
    """
    tenant = factories.make_tenant("acme")
    set_gate_settings(tenant, modes={"*": {"prod": "soft", "nonprod": "soft"}})
    slugs = [f"team-{n}" for n in range(14)]
    for slug in slugs:
        factories.make_budget(tenant, "0.00", project=factories.make_project(tenant, slug))
    grant = factories.make_grant(tenant, "10.00")

    results = run_threads(
        28, lambda i: gate_service(tenant, micros=1_000_000, project=slugs[i % len(slugs)])
    )
    _no_errors(results)
    assert all(r["outcome"] in ("ALLOW", "ALLOW_WITH_CREDITS") for r in results)
    drawn = [r for r in results if r["evaluated_outcome"] == "ALLOW_WITH_CREDITS"]
    assert len(drawn) == 10
    assert sum(r["breach"] for r in results) == 18
    grant.refresh_from_db()
    assert grant.remaining_micros == 0
    assert_money_invariants(hard=False)
    assert verify_ledger(tenant_id=tenant.id).ok
