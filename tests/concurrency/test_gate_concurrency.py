"""Concurrency on real PostgreSQL: many threads, one budget, money never double-booked."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from controlplane.core.errors import TollgateError
from enforcement.models import BudgetPeriod, CreditGrant, Decision, Reservation
from enforcement.services.gate import GateRequest, gate_decide
from enforcement.services.reservations import (
    reservation_commit,
    reservation_release,
    reservations_expire,
)
from tests import factories
from tests.enforcement.invariants import assert_money_invariants

# 64 threads = 64 PostgreSQL connections: keep these tests on one xdist worker (loadgroup)
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("pg-connections")]
THREADS = 64


def run_together(count: int, work):
    """Start ``count`` threads at once (barrier); each closes its DB connection when done."""
    barrier = threading.Barrier(count)

    def wrapped(index):
        try:
            barrier.wait(timeout=30)
            return work(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(wrapped, range(count)))


def decide(tenant, amount_micros: int, *, key: str | None = None, project="payments"):
    return gate_decide(
        tenant=tenant,
        api_key=None,
        req=GateRequest(
            source="api",
            idempotency_key=key or uuid.uuid4().hex,
            project=project,
            environment="prod",
            estimated_micros=amount_micros,
        ),
    ).response


@pytest.fixture(autouse=True)
def patient_policy(tenant):
    """64 callers queue on one row lock: give them a deadline that measures locking, not speed.

    (Under the default 250 ms deadline some of them get the fail-mode answer instead; that
    behaviour has its own tests in tests/enforcement/test_policy_eval.py.)
    """
    from tests.enforcement.helpers import policy_document, publish_policy

    publish_policy(tenant, {**policy_document(), "decision_deadline_ms": 10000})


@pytest.fixture
def setup(tenant):
    project = factories.make_project(tenant, "payments")
    budget = factories.make_budget(tenant, "100.00", project=project)
    return project, budget


def test_64_threads_never_reserve_more_than_the_limit(tenant, setup):
    _, budget = setup
    answers = run_together(THREADS, lambda i: decide(tenant, 5_000_000))
    allowed = [a for a in answers if a["outcome"] == "ALLOW"]
    denied = [a for a in answers if a["outcome"] == "DENY"]
    assert len(allowed) == 20 and len(denied) == THREADS - 20
    assert {a["reason_code"] for a in denied} == {"BUDGET_EXCEEDED"}
    period = BudgetPeriod.objects.get(budget=budget)
    assert period.reserved_micros == 100_000_000
    assert Reservation.objects.filter(state="pending").count() == 20
    assert_money_invariants(tenant)


def test_same_idempotency_key_from_many_threads_makes_one_decision(tenant, setup):
    answers = run_together(16, lambda i: decide(tenant, 1_000_000, key="deploy-42"))
    assert len({a["decision_id"] for a in answers}) == 1
    assert Decision.objects.filter(idempotency_key="deploy-42").count() == 1
    assert sum(1 for a in answers if not a["idempotent_replay"]) == 1
    assert BudgetPeriod.objects.get().reserved_micros == 1_000_000
    assert_money_invariants(tenant)


def test_commit_and_release_race_has_exactly_one_winner(tenant, setup):
    reservation_id = decide(tenant, 10_000_000)["reservation"]["id"]

    def resolve(index):
        try:
            if index % 2:
                reservation_commit(reservation_id=reservation_id, actual_micros=7_000_000)
                return "committed"
            reservation_release(reservation_id=reservation_id)
            return "released"
        except TollgateError as exc:
            assert exc.code == "RESERVATION_RESOLVED", exc.code
            return "409"

    results = run_together(24, resolve)
    winners = [r for r in results if r != "409"]
    assert len(winners) == 1
    state = Reservation.objects.get(pk=reservation_id).state
    assert state == winners[0]
    period = BudgetPeriod.objects.get()
    assert period.reserved_micros == 0
    assert period.spent_micros == (7_000_000 if state == "committed" else 0)
    assert_money_invariants(tenant)


def test_parallel_expiry_sweeps_expire_each_reservation_once(tenant, setup):
    ids = [decide(tenant, 1_000_000)["reservation"]["id"] for _ in range(30)]
    from django.utils import timezone

    Reservation.objects.filter(pk__in=ids).update(
        expires_at=timezone.now() - timezone.timedelta(seconds=5)
    )
    counts = run_together(8, lambda i: reservations_expire(batch=4))
    # each sweep loops over batches until nothing is due; together they expire each one once
    assert sum(counts) == 30
    assert Reservation.objects.filter(pk__in=ids, state="expired").count() == 30
    assert BudgetPeriod.objects.get().reserved_micros == 0
    assert_money_invariants(tenant)


def test_mixed_reserve_commit_release_expire_keeps_every_counter_exact(tenant, setup):
    rng = random.Random(7)
    plans = [rng.choice(["commit", "release", "keep", "expire"]) for _ in range(THREADS)]
    amounts = [rng.randint(1, 4) * 1_000_000 for _ in range(THREADS)]

    def work(index):
        answer = decide(tenant, amounts[index])
        reservation = answer["reservation"]
        if reservation is None:
            return answer["outcome"]
        plan = plans[index]
        if plan == "commit":
            reservation_commit(reservation_id=reservation["id"], actual_micros=amounts[index] // 2)
        elif plan == "release":
            reservation_release(reservation_id=reservation["id"])
        elif plan == "expire":
            Reservation.objects.filter(pk=reservation["id"]).update(
                expires_at=Reservation.objects.get(pk=reservation["id"]).created_at
            )
            reservations_expire(batch=10)
        return answer["outcome"]

    outcomes = run_together(THREADS, work)
    assert set(outcomes) <= {"ALLOW", "DENY"}
    assert_money_invariants(tenant)


def test_credit_grants_never_go_below_zero(tenant):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "0", project=project)  # every cent must come from credits
    grant = factories.make_grant(tenant, "50.00")
    answers = run_together(THREADS, lambda i: decide(tenant, 3_000_000))
    with_credits = [a for a in answers if a["outcome"] == "ALLOW_WITH_CREDITS"]
    assert len(with_credits) == 16  # 16 x 3 = 48 <= 50 < 51
    grant = CreditGrant.objects.get(pk=grant.pk)
    assert grant.remaining_micros == 2_000_000
    assert_money_invariants(tenant)
