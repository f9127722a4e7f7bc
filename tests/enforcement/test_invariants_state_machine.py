"""Random sequences of reserve / commit / release / expire / late commit / grant / void keep the
money invariants (counters equal their allocations, hard limits hold, the ledger verifies)."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from django.db.models import F
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from controlplane.core.errors import TollgateError
from enforcement.models import Reservation
from enforcement.services.budgets import credit_grant_void
from enforcement.services.gate import GateRequest, gate_decide
from enforcement.services.reservations import (
    reservation_commit,
    reservation_release,
    reservations_expire,
)
from tests import factories
from tests.enforcement.helpers import policy_document, publish_policy
from tests.enforcement.invariants import assert_money_invariants

pytestmark = pytest.mark.django_db
_slugs = itertools.count()
USD = 1_000_000


class MoneyMachine(RuleBasedStateMachine):
    pending = Bundle("pending")
    expired = Bundle("expired")
    grants = Bundle("grants")

    @initialize(limit=st.integers(10, 120), nested=st.booleans())
    def setup(self, limit, nested):
        self.tenant = factories.make_tenant(f"sm{next(_slugs)}")
        self.project = factories.make_project(self.tenant, "payments")
        # timing is not under test here: a generous deadline keeps the machine deterministic
        publish_policy(self.tenant, {**policy_document(), "decision_deadline_ms": 10000})
        factories.make_budget(self.tenant, f"{limit}.00", project=self.project)
        factories.make_grant(self.tenant, "40.00")  # so credit draws happen from the start
        if nested:  # a second, tenant-wide budget covers the same spend
            factories.make_budget(self.tenant, f"{limit * 2}.00")

    @rule(target=pending, amount=st.integers(1, 60).map(lambda dollars: dollars * USD))
    def reserve(self, amount):
        answer = gate_decide(
            tenant=self.tenant,
            api_key=None,
            req=GateRequest(
                source="api",
                idempotency_key=uuid.uuid4().hex,
                project="payments",
                environment="dev",
                estimated_micros=amount,
            ),
        ).response
        assert answer["outcome"] in ("ALLOW", "ALLOW_WITH_CREDITS", "DENY")
        if answer["reservation"] is None:
            return None
        return (answer["reservation"]["id"], amount)

    @rule(held=consumes(pending), fraction=st.floats(0, 1))
    def commit(self, held, fraction):
        if held is None:
            return
        reservation_id, amount = held
        reservation_commit(reservation_id=reservation_id, actual_micros=int(amount * fraction))

    @rule(held=consumes(pending))
    def release(self, held):
        if held is not None:
            reservation_release(reservation_id=held[0])

    @rule(target=expired, held=consumes(pending))
    def expire(self, held):
        if held is None:
            return None
        # the database clock (transaction time in this test) decides what is overdue
        Reservation.objects.filter(pk=held[0]).update(
            expires_at=F("created_at") - timedelta(seconds=1)
        )
        assert reservations_expire(batch=50) >= 1
        assert Reservation.objects.get(pk=held[0]).state == "expired"
        return held

    @rule(gone=consumes(expired), fraction=st.floats(0, 1))
    def late_commit(self, gone, fraction):
        if gone is None:
            return
        reservation, _ = reservation_commit(
            reservation_id=gone[0], actual_micros=int(gone[1] * fraction)
        )
        assert reservation.late is True and reservation.state == "committed"

    @rule(held=pending)
    def second_resolution_is_refused(self, held):
        if held is None:
            return
        state = Reservation.objects.get(pk=held[0]).state
        if state != "pending":
            with pytest.raises(TollgateError):
                reservation_release(reservation_id=held[0])

    @rule(target=grants, amount=st.integers(1, 50), pool=st.sampled_from(["reserved", "emergency"]))
    def grant(self, amount, pool):
        return factories.make_grant(self.tenant, f"{amount}.00", pool=pool).pk

    @rule(grant_id=consumes(grants))
    def void(self, grant_id):
        from enforcement.models import CreditGrant

        credit_grant_void(grant=CreditGrant.objects.get(pk=grant_id))

    @invariant()
    def money_adds_up(self):
        if hasattr(self, "tenant"):
            assert_money_invariants(self.tenant)


def test_money_invariants_hold_for_random_sequences():
    run_state_machine_as_test(
        MoneyMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
