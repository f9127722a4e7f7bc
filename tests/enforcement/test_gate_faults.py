"""A database failure in the middle of a decision: nothing half-written, the fail mode answers.

The failure is a real one: a PostgreSQL trigger that raises on INSERT into one of the tables the
decision writes last (the ledger or the outbox), so the decision, reservation and counter updates
have already been executed when the transaction aborts. The trigger raises with the SQLSTATE of an
infrastructure fault (57P01 admin_shutdown: the fail mode answers) or of a plain error (P0001: a
bug, which always fails closed). tests/chaos/ and tests/core/test_database_unavailable.py do the
same with a real server that is down or full.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection

from controlplane.audit.models import LedgerChain, LedgerEntry, OutboxEvent
from controlplane.audit.verify import verify_ledger
from enforcement.models import (
    BudgetPeriod,
    CreditGrant,
    Decision,
    Reservation,
    ReservationAllocation,
)
from enforcement.services.gate import CannotDecide
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.helpers import gate_service, set_gate_settings

pytestmark = [pytest.mark.django_db, pytest.mark.both_stores]
URL = "/api/v1/gate/decisions"


@pytest.fixture
def world(tenant):
    project = factories.make_project(tenant, "payments")
    budget = factories.make_budget(tenant, "100.00", project=project)
    grant = factories.make_grant(tenant, "50.00")
    gate_service(tenant, micros=90_000_000)  # periods exist, some money already held
    return budget, grant


def _fail_inserts_into(model, sqlstate: str = "57P01") -> None:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION tollgate_test_fail() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = '{sqlstate}'; END $$
            LANGUAGE plpgsql;
            """
        )
        cursor.execute(
            f'CREATE TRIGGER tollgate_test_fail AFTER INSERT ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION tollgate_test_fail()"
        )


def _snapshot():
    return {
        "decisions": Decision.objects.count(),
        "reservations": Reservation.objects.count(),
        "allocations": ReservationAllocation.objects.count(),
        "ledger": LedgerEntry.objects.count(),
        "outbox": OutboxEvent.objects.count(),
        "periods": sorted(
            BudgetPeriod.objects.values_list("id", "reserved_micros", "spent_micros")
        ),
        "grants": sorted(CreditGrant.objects.values_list("id", "remaining_micros")),
        "heads": sorted(LedgerChain.objects.values_list("id", "head_seq", "head_hash")),
    }


@pytest.mark.parametrize("failing", [LedgerEntry, OutboxEvent], ids=["ledger", "outbox"])
@pytest.mark.parametrize(("sqlstate", "cause"), [("57P01", "database"), ("P0001", "error")])
def test_failure_mid_decision_leaves_nothing_half_written(tenant, world, failing, sqlstate, cause):
    before = _snapshot()
    _fail_inserts_into(failing, sqlstate)
    with pytest.raises(CannotDecide) as exc:
        gate_service(tenant, micros=30_000_000)  # would draw budget and credits
    assert exc.value.cause == cause and isinstance(exc.value.__cause__, DatabaseError)
    assert _snapshot() == before
    assert verify_ledger(tenant_id=tenant.id).ok


def _gate(client, environment):
    return client.post(
        URL,
        {"project": "payments", "environment": environment, "estimated_cost_usd": "30.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


def test_prod_fails_closed_with_503_not_500(client_a, tenant, world):
    before = _snapshot()
    _fail_inserts_into(OutboxEvent)
    response = _gate(client_a, "prod")
    problem = assert_problem(response, 503, "GATE_UNAVAILABLE")
    assert problem["fail_open"] is False
    assert response["Retry-After"] == "5"
    assert _snapshot() == before


def test_nonprod_fails_open_and_flags_it(client_a, tenant, world):
    before = _snapshot()
    _fail_inserts_into(LedgerEntry)
    response = _gate(client_a, "dev")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outcome"] == "ALLOW" and body["fail_open"] is True
    assert body["reason_code"] == "FAIL_OPEN" and body["enforced"] is False
    assert body["decision_id"] is None and body["reservation"] is None
    assert _snapshot() == before


def test_fail_mode_comes_from_the_tenant_settings(client_a, tenant, world):
    set_gate_settings(tenant, fail_modes={"prod": "open", "nonprod": "closed"})
    _fail_inserts_into(OutboxEvent)
    assert _gate(client_a, "prod").json()["fail_open"] is True
    assert_problem(_gate(client_a, "dev"), 503, "GATE_UNAVAILABLE")


def test_an_unexpected_database_error_fails_closed_even_where_the_fail_mode_is_open(
    client_a, tenant, world
):
    before = _snapshot()
    _fail_inserts_into(LedgerEntry, "P0001")  # not an outage: a bug must never become an ALLOW
    problem = assert_problem(_gate(client_a, "dev"), 503, "GATE_UNAVAILABLE")
    assert problem["fail_open"] is False and problem["fail_cause"] == "error"
    assert _snapshot() == before


def test_a_check_violation_is_a_409_conflict_not_a_replay_or_500(client_a, tenant, world):
    with connection.cursor() as cursor:  # a constraint the gate's own checks do not know about
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE enforcement_decision ADD CONSTRAINT tollgate_test_small "
            "CHECK (amount_micros < 1000000) NOT VALID"
        )
    problem = assert_problem(_gate(client_a, "prod"), 409, "DECISION_CONFLICT")
    assert problem["constraint"] == "tollgate_test_small" and problem["remediation"]
