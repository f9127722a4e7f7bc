"""GateRequest.dry_run decides and keeps nothing; deadline_ms lowers the policy's deadline."""

from __future__ import annotations

import pytest

from controlplane.audit.models import LedgerEntry, OutboxEvent
from enforcement.models import BudgetPeriod, Decision, Reservation
from enforcement.services.gate import CannotDecide, GateRequest, gate_decide
from enforcement.services.policies import last_known_policy
from tests import factories
from tests.enforcement.helpers import row_locked_elsewhere

pytestmark = pytest.mark.django_db


@pytest.fixture
def budget(tenant):
    project = factories.make_project(tenant, "payments")
    return factories.make_budget(tenant, "100.00", project=project)


def _req(**kw) -> GateRequest:
    return GateRequest(
        source="kubernetes",
        idempotency_key=kw.pop("key", "k-1"),
        project="payments",
        environment="prod",
        estimated_micros=kw.pop("micros", 10_000_000),
        **kw,
    )


def test_a_dry_run_decides_and_keeps_nothing(tenant, budget):
    ledger = LedgerEntry.objects.count()
    body = gate_decide(tenant=tenant, api_key=None, req=_req(dry_run=True)).response
    assert body["outcome"] == "ALLOW" and body["dry_run"] is True
    assert not Decision.objects.exists() and not Reservation.objects.exists()
    assert not OutboxEvent.objects.filter(event_type="decision.created").exists()
    assert LedgerEntry.objects.count() == ledger
    assert all(p.reserved_micros == 0 for p in BudgetPeriod.objects.all())
    denied = gate_decide(tenant=tenant, api_key=None, req=_req(dry_run=True, micros=10**9))
    assert denied.response["outcome"] == "DENY"
    # The same key then decides for real.
    real = gate_decide(tenant=tenant, api_key=None, req=_req()).response
    assert real["outcome"] == "ALLOW" and real["dry_run"] is False
    assert Reservation.objects.get().amount_micros == 10_000_000


def test_the_lower_deadline_bounds_the_decisions_lock_waits(tenant, budget):
    from django.db import connection

    seen = []

    def spy(execute, sql, params, many, context):
        if "tollgate_gate_prepare" in sql or "lock_timeout" in sql:
            seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        gate_decide(tenant=tenant, api_key=None, req=_req(key="a", deadline_ms=40))
        gate_decide(tenant=tenant, api_key=None, req=_req(key="b", deadline_ms=10_000))
    deadlines = [params[6] for sql, params in seen if "tollgate_gate_prepare" in sql]
    policy_ms = last_known_policy(tenant.id).deadline_ms
    assert policy_ms < 10_000
    assert deadlines[0] == 40 and deadlines[-1] == policy_ms  # the lower of the two wins


@pytest.mark.django_db(transaction=True)
def test_a_callers_deadline_below_the_policys_bounds_lock_waits(tenant, budget):
    gate_decide(tenant=tenant, api_key=None, req=_req(key="warm"))  # the period exists
    period = BudgetPeriod.objects.get()
    with (
        row_locked_elsewhere("enforcement_budgetperiod", period.pk),
        pytest.raises(CannotDecide) as caught,
    ):
        gate_decide(tenant=tenant, api_key=None, req=_req(key="k-2", deadline_ms=20))
    assert caught.value.cause == "deadline"
    assert Decision.objects.count() == 1
