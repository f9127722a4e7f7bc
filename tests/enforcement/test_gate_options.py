"""What callers other than the HTTP view ask of the one decision path: dry runs, a per-call
deadline, and the one fail-mode answer (``gate_fail_answer``)."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import OperationalError

from controlplane.audit.models import LedgerChain, LedgerEntry, OutboxEvent
from controlplane.core.errors import TollgateError
from enforcement.models import BudgetPeriod, CreditGrant, Decision, Reservation
from enforcement.services.gate import (
    CannotDecide,
    GateRequest,
    gate_decide,
    gate_fail_answer,
)
from tests import factories
from tests.enforcement.helpers import (
    policy_document,
    publish_policy,
    row_locked_elsewhere,
    set_gate_settings,
)

pytestmark = pytest.mark.both_stores


def _req(**kw) -> GateRequest:
    kw.setdefault("source", "api")
    kw.setdefault("idempotency_key", uuid.uuid4().hex)
    kw.setdefault("project", "payments")
    kw.setdefault("environment", "prod")
    return GateRequest(**kw)


def _state():
    return {
        "decisions": Decision.objects.count(),
        "reservations": Reservation.objects.count(),
        "ledger": LedgerEntry.objects.count(),
        "outbox": OutboxEvent.objects.count(),
        "heads": sorted(LedgerChain.objects.values_list("id", "head_seq")),
        "periods": sorted(
            BudgetPeriod.objects.values_list("id", "reserved_micros", "spent_micros")
        ),
        "grants": sorted(CreditGrant.objects.values_list("id", "remaining_micros")),
    }


def _comparable(body: dict) -> dict:
    """The decision itself; the period a dry run opened (and rolled back) had another id."""
    same = ("outcome", "evaluated_outcome", "reason_code", "mode", "amount_usd", "breach")
    return {
        **{k: body[k] for k in same},
        "message": re.sub(r"bpr_[0-9a-z]+", "bpr_", body["message"]),
        "waterfall": [
            {k: v for k, v in st.items() if k != "period_id"} for st in body["waterfall"]
        ],
    }


@pytest.fixture
def world(tenant):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "100.00", project=project)
    factories.make_grant(tenant, "50.00")
    return project


@pytest.mark.django_db
@pytest.mark.parametrize("micros", [10_000_000, 120_000_000, 900_000_000])
def test_a_dry_run_decides_as_usual_and_writes_nothing(tenant, world, micros):
    """Even the first decision of a period: the period it would open is not left behind."""
    before = _state()
    dry = gate_decide(tenant=tenant, api_key=None, req=_req(estimated_micros=micros, dry_run=True))
    assert dry.created is False and dry.response["dry_run"] is True
    assert dry.response["decision_id"] is None and dry.response["reservation"] is None
    assert _state() == before
    real = gate_decide(tenant=tenant, api_key=None, req=_req(estimated_micros=micros))
    assert _comparable(dry.response) == _comparable(real.response)
    assert real.response["dry_run"] is False and real.created is True


@pytest.mark.django_db
def test_a_dry_run_cannot_spend_an_approval_token(tenant, world):
    with pytest.raises(TollgateError) as exc:
        gate_decide(
            tenant=tenant,
            api_key=None,
            req=_req(estimated_micros=1, dry_run=True, approval_token="x.y.z"),
        )
    assert exc.value.errors[0]["field"] == "approval_token"


@pytest.mark.django_db
def test_a_per_call_deadline_below_one_is_refused(tenant, world):
    with pytest.raises(TollgateError) as exc:
        gate_decide(tenant=tenant, api_key=None, req=_req(estimated_micros=1, deadline_ms=0))
    assert exc.value.errors[0]["field"] == "deadline_ms"


@pytest.mark.django_db(transaction=True)
def test_a_per_call_deadline_bounds_the_lock_wait(tenant, world):
    """The policy allows 5 s; the caller allows 50 ms: a held period lock fails it in 50 ms."""
    publish_policy(tenant, {**policy_document(), "decision_deadline_ms": 5000})
    gate_decide(tenant=tenant, api_key=None, req=_req(estimated_micros=1))  # opens the period
    period = BudgetPeriod.objects.get()
    with (
        row_locked_elsewhere("enforcement_budgetperiod", period.id),
        pytest.raises(CannotDecide) as exc,
    ):
        gate_decide(tenant=tenant, api_key=None, req=_req(estimated_micros=1, deadline_ms=50))
    assert exc.value.cause == "deadline" and "50 ms" in exc.value.detail


@pytest.mark.django_db
def test_a_per_call_deadline_never_extends_the_policys(tenant, world):
    """Asking for more time than the policy gives changes nothing: evaluation past the
    policy's deadline still cannot decide."""
    from enforcement.services.gate.request import deadline_ms
    from enforcement.services.policies import active_policy

    policy = active_policy(tenant.id)
    assert deadline_ms(_req(deadline_ms=10**6), policy) == policy.deadline_ms
    assert deadline_ms(_req(deadline_ms=20), policy) == 20
    assert deadline_ms(_req(), policy) == policy.deadline_ms


@pytest.mark.django_db
def test_the_fail_answer_follows_the_fail_mode(tenant, world):
    set_gate_settings(tenant, fail_modes={"prod": "closed", "nonprod": "open"})
    opened = gate_fail_answer(
        tenant=tenant,
        req=_req(environment="dev", estimated_micros=2_500_000),
        exc=CannotDecide("database"),
    )
    assert opened.created is False
    assert opened.response["fail_open"] is True and opened.response["amount_usd"] == "2.50"
    with pytest.raises(TollgateError) as closed:
        gate_fail_answer(tenant=tenant, req=_req(estimated_micros=1), exc=CannotDecide("database"))
    assert closed.value.code == "GATE_UNAVAILABLE" and closed.value.status_code == 503
    # A cause other than the database or the deadline fails closed even where the mode is open.
    with pytest.raises(TollgateError) as error:
        gate_fail_answer(
            tenant=tenant,
            req=_req(environment="dev", estimated_micros=1),
            exc=CannotDecide("error"),
        )
    assert error.value.code == "GATE_UNAVAILABLE"
    # A database error from outside the decision is classified the same way.
    opened_db = gate_fail_answer(
        tenant=tenant,
        req=_req(environment="dev", estimated_micros=1),
        exc=OperationalError("server closed the connection unexpectedly"),
    )
    assert opened_db.response["fail_open"] is True
    assert opened_db.response["fail_cause"] == "database"


@pytest.mark.django_db
def test_the_outbox_event_refers_to_the_decision_and_delivers_its_summary(tenant, world):
    from controlplane.audit.outbox import event_data

    body = gate_decide(tenant=tenant, api_key=None, req=_req(estimated_micros=120_000_000))
    answer = body.response
    event = OutboxEvent.objects.get(event_type="decision.created")
    assert event.payload == {"decision_id": answer["decision_id"]}  # a reference, not a copy
    assert event_data(event) == {
        "decision_id": answer["decision_id"],
        "outcome": "ALLOW_WITH_CREDITS",
        "reason_code": "CREDITS_APPLIED",
        "mode": "hard",
        "project": "payments",
        "environment": "prod",
        "amount_usd": "120.00",
        "reservation_id": answer["reservation"]["id"],
    }


@pytest.mark.django_db
def test_the_fail_answer_of_a_bound_key_names_the_keys_project_and_environment(tenant, world):
    set_gate_settings(tenant, fail_modes={"prod": "closed", "nonprod": "open"})
    key, _ = factories.make_api_key(tenant, project=world, environment="dev")
    body = gate_fail_answer(
        tenant=tenant,
        req=_req(project=None, environment=None, estimated_micros=1),
        exc=CannotDecide("deadline"),
        api_key=key,
    ).response
    assert (body["project"], body["environment"], body["fail_open"]) == ("payments", "dev", True)
