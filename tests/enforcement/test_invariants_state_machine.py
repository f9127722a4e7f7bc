"""Random sequences of reserve/commit/release/expire/reconcile/grant keep the money invariants.

After every step: each budget period's ``reserved`` and ``spent`` equal the sums of their
allocations, grants' ``remaining == amount - drawn`` within ``[0, amount]``, hard budgets are
never overbooked (except periods charged by a recorded late commit or over-commit), and every
ledger chain verifies. Each example runs in a savepoint that is rolled back afterwards.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from controlplane.audit.verify import verify_ledger
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from enforcement.models import CreditGrant, Reservation
from enforcement.services.budgets import credit_grant_void
from enforcement.services.reservations import (
    reservation_commit,
    reservation_reconcile,
    reservation_release,
    reservations_expire,
)
from tests import factories
from tests.enforcement.helpers import assert_money_invariants, gate_service, hard_mode

pytestmark = pytest.mark.both_stores

SCOPES = [("payments", "prod"), ("payments", "dev"), ("search", "prod")]
money = st.integers(min_value=1, max_value=80).map(lambda usd: usd * 1_000_000)


class MoneyMachine(RuleBasedStateMachine):
    reservations = Bundle("reservations")
    grants = Bundle("grants")

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.tenant = factories.make_tenant("acme")
        payments = factories.make_project(self.tenant, "payments")
        search = factories.make_project(self.tenant, "search")
        hard_mode(self.tenant)
        factories.make_budget(self.tenant, "250.00")
        factories.make_budget(self.tenant, "150.00", project=payments)
        factories.make_budget(self.tenant, "60.00", project=payments, environment="prod")
        factories.make_budget(self.tenant, "90.00", project=search, period="daily")

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @rule(target=reservations, scope=st.sampled_from(SCOPES), micros=money)
    def reserve(self, scope, micros):
        body = gate_service(self.tenant, micros=micros, project=scope[0], environment=scope[1])
        assert body["outcome"] in ("ALLOW", "ALLOW_WITH_CREDITS", "DENY")
        if body["outcome"] == "DENY":
            assert body["reservation"] is None
        return body["reservation"]["id"] if body["reservation"] else None

    @rule(rid=reservations, fraction=st.sampled_from([0, 50, 100, 130]))
    def commit(self, rid, fraction):
        if rid is None:
            return
        before = Reservation.objects.get(pk=rid)
        actual = before.amount_micros * fraction // 100
        try:
            reservation, info = reservation_commit(reservation_id=rid, actual_micros=actual)
        except TollgateError as exc:
            assert before.state not in ("pending", "expired")
            assert exc.code == "RESERVATION_RESOLVED"
            return
        assert before.state in ("pending", "expired")
        assert reservation.state == "committed"
        assert info["late"] == (before.state == "expired")

    @rule(rid=reservations)
    def release(self, rid):
        if rid is None:
            return
        before = Reservation.objects.get(pk=rid).state
        try:
            reservation_release(reservation_id=rid)
        except TollgateError as exc:
            assert before != "pending" and exc.code == "RESERVATION_RESOLVED"
            return
        assert before == "pending"

    @rule(rid=reservations)
    def expire(self, rid):
        if rid is None:
            return
        before = Reservation.objects.get(pk=rid).state
        Reservation.objects.filter(pk=rid, state="pending").update(
            expires_at=db_now() - timedelta(seconds=1)
        )
        swept = reservations_expire()
        assert swept == (1 if before == "pending" else 0)
        assert reservations_expire() == 0  # nothing expires twice

    @rule(rid=consumes(reservations), extra=st.integers(min_value=0, max_value=100))
    def reconcile(self, rid, extra):
        if rid is None:
            return
        reservation = Reservation.objects.get(pk=rid)
        if reservation.state != "committed":
            with pytest.raises(TollgateError):
                reservation_reconcile(reservation_id=rid, invoiced_micros=1)
            return
        invoiced = reservation.reported_micros * (100 + extra) // 100
        reservation_reconcile(reservation_id=rid, invoiced_micros=invoiced)

    @rule(
        target=grants,
        micros=money,
        pool=st.sampled_from(["reserved", "emergency"]),
        priority=st.integers(min_value=0, max_value=3),
    )
    def grant_create(self, micros, pool, priority):
        return factories.make_grant(
            self.tenant, f"{micros // 1_000_000}.00", pool=pool, priority=priority
        ).id

    @rule(grant_id=grants)
    def grant_void(self, grant_id):
        grant = CreditGrant.objects.get(pk=grant_id)
        if grant.voided_at is not None:
            with pytest.raises(TollgateError):
                credit_grant_void(grant=grant)
            return
        remaining = grant.remaining_micros
        credit_grant_void(grant=grant)
        grant.refresh_from_db()
        assert grant.remaining_micros == remaining

    @invariant()
    def money_adds_up_and_ledger_verifies(self):
        assert_money_invariants(hard=True)
        report = verify_ledger(tenant_id=self.tenant.id)
        assert report.ok, report.problems


@pytest.mark.django_db
def test_money_invariants_hold_under_random_sequences():
    run_state_machine_as_test(
        MoneyMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
