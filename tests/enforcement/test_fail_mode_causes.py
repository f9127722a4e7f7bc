"""Which failures may take the gate's fail mode, and which never can (issue 17, item 1).

The fail mode (an unrecorded ALLOW where it is ``open``) is for Tollgate's own infrastructure:
the database unreachable, and the decision deadline Tollgate set passing. Nothing a client sends
may reach it. Every case below runs where the fail mode is ``open`` (nonprod), so reaching it
would show as ``fail_open: true``; each says what it answers instead.

Database failures are real PostgreSQL errors: a trigger on the outbox table (written last in a
decision) raises with the SQLSTATE of the class under test, after every other row of the
decision has been written, or the session's own backend is terminated mid-decision.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass

import pytest
from django.db import connection
from prometheus_client import REGISTRY

from controlplane.audit.models import OutboxEvent
from enforcement.models import BudgetPeriod, Decision, Reservation
from tests import factories
from tests.enforcement.helpers import policy_document, row_locked_elsewhere, set_gate_settings

pytestmark = pytest.mark.both_stores

GATE = "/api/v1/gate/decisions"


def _fail_open_count() -> float:
    return REGISTRY.get_sample_value("gate_fail_open_total") or 0.0


def _inject(sql_body: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION tg_cause() RETURNS trigger AS $$ BEGIN "
            + sql_body
            + " RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f'CREATE TRIGGER tg_cause BEFORE INSERT ON "{OutboxEvent._meta.db_table}" '
            "FOR EACH ROW EXECUTE FUNCTION tg_cause()"
        )


def _raise(errcode: str) -> str:
    return f"RAISE EXCEPTION 'injected' USING ERRCODE = '{errcode}';"


def _gate(client, **body):
    body = {"project": "payments", "environment": "dev", "estimated_cost_usd": "5.00"} | body
    return client.post(GATE, body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)


@pytest.fixture
def world(tenant):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "100.00", project=project)
    set_gate_settings(tenant, fail_modes={"prod": "open", "nonprod": "open"})
    return project


def _nothing_written(before: int) -> None:
    assert Decision.objects.count() == before
    assert not Reservation.objects.exists()
    assert not BudgetPeriod.objects.filter(reserved_micros__gt=0).exists()


# --- causes that take the fail mode ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "errcode",
    ["admin_shutdown", "crash_shutdown", "cannot_connect_now", "too_many_connections"],
)
def test_the_database_going_away_takes_the_fail_mode(client_a, world, errcode):
    before, opened = Decision.objects.count(), _fail_open_count()
    _inject(_raise(errcode))
    body = _gate(client_a).json()
    assert body["fail_open"] is True and body["fail_cause"] == "database"
    assert _fail_open_count() == opened + 1
    _nothing_written(before)


@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_takes_the_fail_mode(client_a, world):
    """The session's backend is terminated in the middle of the decision (a real drop)."""
    _inject("PERFORM pg_terminate_backend(pg_backend_pid());")
    try:
        body = _gate(client_a).json()
    finally:
        connection.close()  # the next query reconnects
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TRIGGER tg_cause ON "{OutboxEvent._meta.db_table}"')
    assert body["fail_open"] is True and body["fail_cause"] == "database"
    assert not Decision.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_past_the_deadline_takes_the_fail_mode(client_a, tenant, world):
    first = _gate(client_a)
    assert first.status_code == 201
    from enforcement.services.policies import policy_create_draft, policy_publish

    draft = policy_create_draft(
        tenant=tenant,
        data={
            **policy_document(fail_modes={"prod": "open", "nonprod": "open"}),
            "decision_deadline_ms": 50,
        },
    )
    policy_publish(tenant=tenant, version=draft.version)
    period = BudgetPeriod.objects.get()
    with row_locked_elsewhere("enforcement_budgetperiod", period.id):
        body = _gate(client_a).json()
    assert body["fail_open"] is True and body["fail_cause"] == "deadline"


@pytest.mark.django_db
def test_evaluation_past_the_deadline_takes_the_fail_mode(client_a, world, monkeypatch):
    """Tollgate's own work overran the deadline (the clock jumps 10 s per reading)."""
    from enforcement.services import gate as gate_module

    ticks = iter(range(0, 10_000, 10))
    monkeypatch.setattr(gate_module.time, "perf_counter", lambda: float(next(ticks)))
    before = Decision.objects.count()
    body = _gate(client_a).json()
    assert body["fail_open"] is True and body["fail_cause"] == "deadline"
    _nothing_written(before)


# --- causes that never take it -----------------------------------------------------------------


@dataclass
class Case:
    name: str
    status: int
    code: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_token(kid: str) -> str:
    """A compact JWS whose header names ``kid`` (the signature is garbage)."""
    header = {"alg": "EdDSA", "typ": "approval+jwt", "kid": kid}
    return ".".join([_b64(json.dumps(header).encode()), _b64(b'{"jti": "x"}'), _b64(b"sig")])


CLIENT_CAUSES = [
    (Case("forged token: NUL in kid", 401, "TOKEN_INVALID"), {"approval_token": "KID_NUL"}),
    (Case("forged token: 1 kB kid", 401, "TOKEN_INVALID"), {"approval_token": "KID_LONG"}),
    (Case("malformed token", 401, "TOKEN_INVALID"), {"approval_token": "not.a.token"}),
    (
        Case("padded attributes", 400, "VALIDATION_FAILED"),
        {"resource": {"attributes": {f"k{i}": "v" for i in range(300)}}},
    ),
    (
        Case("too many labels", 400, "VALIDATION_FAILED"),
        {"labels": {f"l{i}": "v" for i in range(65)}},
    ),
    (Case("NUL in a label", 400, "VALIDATION_FAILED"), {"labels": {"team": "a\x00b"}}),
    (Case("amount above the maximum", 400, "VALIDATION_FAILED"), {"estimated_cost_usd": "1" * 13}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "extra"), CLIENT_CAUSES, ids=[case.name for case, _ in CLIENT_CAUSES]
)
def test_client_data_never_takes_the_fail_mode(client_a, world, case, extra):
    if extra.get("approval_token") == "KID_NUL":
        extra = {"approval_token": _forged_token("a\x00")}
    elif extra.get("approval_token") == "KID_LONG":
        extra = {"approval_token": _forged_token("sgk_" + "x" * 1000)}
    before, opened = Decision.objects.count(), _fail_open_count()
    response = _gate(client_a, **extra)
    assert response.status_code == case.status, response.content[:400]
    assert response.json()["code"] == case.code
    assert _fail_open_count() == opened
    _nothing_written(before)


@pytest.mark.django_db
def test_a_forged_token_at_consume_is_401_not_500(client_a, world):
    response = client_a.post(
        "/api/v1/approval-tokens/consume",
        {
            "token": _forged_token("a\x00"),
            "expected_project": "payments",
            "expected_fingerprint": "sha256:" + "0" * 64,
        },
        format="json",
    )
    assert response.status_code == 401 and response.json()["code"] == "TOKEN_INVALID"


@pytest.mark.django_db
def test_an_oversized_body_never_takes_the_fail_mode(client_a, world):
    padding = "x" * (70 * 1024)
    response = client_a.generic(
        "POST",
        GATE,
        f'{{"project": "payments", "environment": "dev", "estimated_cost_usd": "1.00", '
        f'"action": "{padding}"}}',
        "application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert response.status_code == 413 and response.json()["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        ("numeric_value_out_of_range", 422, "AMOUNT_OUT_OF_RANGE"),
        ("character_not_in_repertoire", 400, "INVALID_VALUE"),
        ("invalid_text_representation", 400, "INVALID_VALUE"),
        ("untranslatable_character", 400, "INVALID_VALUE"),
        ("string_data_right_truncation", 400, "INVALID_VALUE"),
    ],
)
def test_a_bad_value_inside_the_database_is_a_4xx_never_the_fail_mode(
    client_a, world, errcode, status, code
):
    """A data exception (SQLSTATE class 22) is the value's fault, wherever it surfaces."""
    before, opened = Decision.objects.count(), _fail_open_count()
    _inject(_raise(errcode))
    response = _gate(client_a)
    assert response.status_code == status and response.json()["code"] == code
    assert _fail_open_count() == opened
    _nothing_written(before)


@pytest.mark.django_db
@pytest.mark.parametrize("errcode", ["raise_exception", "undefined_table", "deadlock_detected"])
def test_an_unexpected_database_error_fails_closed(client_a, world, errcode):
    """Not an outage and not the client's value: a bug fails closed (503), never open."""
    before, opened = Decision.objects.count(), _fail_open_count()
    _inject(_raise(errcode))
    response = _gate(client_a)
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "GATE_UNAVAILABLE" and body["fail_open"] is False
    assert body["fail_cause"] == "error"
    assert _fail_open_count() == opened
    _nothing_written(before)


@pytest.mark.django_db
def test_a_rule_error_is_answered_by_on_rule_error_not_the_fail_mode(client_a, tenant, world):
    set_gate_settings(
        tenant, rules=[{"id": "needs-team", "when": "request.labels.team == 'x'", "then": "deny"}]
    )
    opened = _fail_open_count()
    body = _gate(client_a).json()  # no 'team' label: the rule fails
    assert body["outcome"] == "DENY" and body["reason_code"] == "POLICY_RULE_ERROR"
    assert body["fail_open"] is False and _fail_open_count() == opened


@pytest.mark.django_db
def test_a_rule_over_its_evaluation_budget_is_a_rule_error(client_a, tenant, world, monkeypatch):
    from enforcement.policy import evaluate as evaluate_module

    set_gate_settings(
        tenant, rules=[{"id": "slow", "when": "request.amount_usd > 1.0", "then": "deny"}]
    )
    ticks = iter(range(0, 10_000))
    monkeypatch.setattr(evaluate_module, "_timer", lambda: float(next(ticks)))
    body = _gate(client_a).json()
    assert body["reason_code"] == "POLICY_RULE_ERROR" and body["outcome"] == "DENY"
    assert "evaluation budget exceeded" in body["rule_errors"][0]["error"]
    assert body["fail_open"] is False
