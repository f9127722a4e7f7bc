"""Determinism, deadlines and simulation of policies."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.audit.models import LedgerEntry
from enforcement import engine
from enforcement.models import BudgetPeriod, Decision
from enforcement.policy.compiled import compile_policy
from enforcement.policy.document import validate_document
from enforcement.policy.evaluate import evaluate, snapshot_from_dict, snapshot_to_dict
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.helpers import policy_document, row_locked_elsewhere, simulate

GATE = "/api/v1/gate/decisions"
RULES = [
    {
        "id": "deny-huge",
        "when": "request.amount_usd > 900.0",
        "then": "deny",
        "reason_code": "TOO_BIG",
    },
    {
        "id": "approve-risky",
        "when": "context.risk_score > 1.5 || budget.utilization > 0.9",
        "then": "require_approval",
    },
    {"id": "credits-promo", "when": "'promo' in request.labels", "then": "allow_with_credits_only"},
]
DOCUMENT = validate_document(
    {**policy_document(rules=RULES), "approval": {"threshold_usd": "400"}}
).document

T0 = datetime(2026, 11, 1, tzinfo=UTC)
budgets = st.lists(
    st.builds(
        lambda i, limit, reserved, spent: engine.BudgetSnap(f"bp{i}", limit, reserved, spent),
        st.integers(0, 5),
        st.integers(0, 10**9),
        st.integers(0, 10**9),
        st.integers(0, 10**9),
    ),
    max_size=3,
    unique_by=lambda b: b.ref,
)
grants = st.lists(
    st.builds(
        lambda i, pool, remaining, priority: engine.GrantSnap(
            f"g{i}", pool, remaining, priority, None, T0
        ),
        st.integers(0, 5),
        st.sampled_from(["reserved", "emergency"]),
        st.integers(0, 10**9),
        st.integers(0, 3),
    ),
    max_size=3,
    unique_by=lambda g: g.ref,
)


@settings(max_examples=150, deadline=None)
@given(
    amount=st.integers(0, 2 * 10**9),
    environment=st.sampled_from(["prod", "dev"]),
    labels=st.sampled_from([{}, {"promo": "1"}]),
    risk=st.floats(0, 3),
    snap_budgets=budgets,
    snap_grants=grants,
)
def test_same_request_snapshot_and_policy_hash_give_the_same_decision(
    amount, environment, labels, risk, snap_budgets, snap_grants
):
    snapshot = engine.Snapshot(tuple(snap_budgets), tuple(snap_grants))
    first = compile_policy(DOCUMENT)
    second = compile_policy(validate_document(DOCUMENT).document)  # recompiled independently
    assert first.sha256 == second.sha256
    request = engine.DecisionRequest(
        amount, "api", environment, engine.EnvClass(first.env_class(environment)), "p"
    )
    record = {"labels": labels, "action": "x"}
    context = {"risk_score": risk, "mtd_spend_usd": "1.00"}
    a = evaluate(first, request=request, record=record, snapshot=snapshot, context=context)
    b = evaluate(second, request=request, record=record, snapshot=snapshot, context=context)
    # the replay path (snapshot stored as JSON, read back) must agree too
    c = evaluate(
        second,
        request=request,
        record=record,
        snapshot=snapshot_from_dict(snapshot_to_dict(snapshot)),
        context=context,
    )
    assert a == b == c
    if amount > 900_000_000:
        assert a.outcome.outcome == engine.Verdict.DENY and a.outcome.rule_id == "deny-huge"


# --- deadline ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("fail_mode", "status"), [("closed", 503), ("open", 200)])
def test_deadline_overrun_on_a_held_lock_answers_by_the_fail_mode(
    client_a, tenant, fail_mode, status
):
    """Another session holds the budget period row: the gate gives up at the deadline."""
    project = factories.make_project(tenant, "payments")
    budget = factories.make_budget(tenant, "100.00", project=project)
    # create the current period by a first decision (default 250 ms deadline), then publish a
    # 50 ms deadline and hold the period's row lock from another session
    first = client_a.post(
        GATE,
        {"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="warm",
    )
    assert first.status_code == 201
    from enforcement.services.policies import policy_create_draft, policy_publish

    draft = policy_create_draft(
        tenant=tenant,
        data={
            **policy_document(fail_modes={"prod": fail_mode, "nonprod": "open"}),
            "decision_deadline_ms": 50,
        },
    )
    policy_publish(tenant=tenant, version=draft.version)
    period = BudgetPeriod.objects.get(budget=budget)
    with row_locked_elsewhere("enforcement_budgetperiod", period.id):
        decisions_before = Decision.objects.count()
        response = client_a.post(
            GATE,
            {"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
    assert response.status_code == status, response.content
    if fail_mode == "closed":
        body = assert_problem(response, 503, "GATE_UNAVAILABLE")
        assert body["fail_cause"] == "deadline" and "50 ms" in body["detail"]
    else:
        body = response.json()
        assert (
            body["outcome"] == "ALLOW"
            and body["fail_open"] is True
            and body["fail_cause"] == "deadline"
        )
    assert Decision.objects.count() == decisions_before
    period.refresh_from_db()
    assert period.reserved_micros == 1_000_000  # only the warm-up decision holds money


# --- simulation ----------------------------------------------------------------------------


def _gate(client, amount, environment="prod", **extra):
    body = {
        "project": "payments",
        "environment": environment,
        "estimated_cost_usd": amount,
        **extra,
    }
    response = client.post(GATE, body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def window(db, client_a, tenant):
    """Seven decisions; one is moved out of the window. Hand-computed expectations below."""
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    made = [
        _gate(client_a, "50.00"),  # d0 ALLOW
        _gate(client_a, "150.00"),  # d1 ALLOW
        _gate(client_a, "300.00", environment="dev"),  # d2 ALLOW (nonprod)
        _gate(client_a, "200.00"),  # d3 ALLOW
        _gate(client_a, "400.00"),  # d4 DENY: 50+150+300+200 = 700 reserved, 400 > 300 left
        _gate(client_a, "120.00", labels={"team": "ml"}),  # d5 ALLOW (820 reserved)
        _gate(client_a, "10.00"),  # d6: moved out of the window
    ]
    Decision.objects.filter(pk=made[6]["decision_id"]).update(
        created_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    now = Decision.objects.get(pk=made[0]["decision_id"]).created_at
    return made, now - timedelta(minutes=5), now + timedelta(minutes=5)


SIM_RULES = [
    {
        "id": "big-prod",
        "when": "request.env_class == 'prod' && request.amount_usd > 100.0",
        "then": "require_approval",
    },
    {
        "id": "ml-deny",
        "when": "'team' in request.labels && request.labels.team == 'ml'",
        "then": "deny",
    },
]


def test_simulation_matches_the_hand_computed_window(
    client_a, tenant, window, django_capture_on_commit_callbacks
):
    made, since, until = window
    assert [d["outcome"] for d in made[:6]] == ["ALLOW", "ALLOW", "ALLOW", "ALLOW", "DENY", "ALLOW"]
    ledger_before, decisions_before = LedgerEntry.objects.count(), Decision.objects.count()
    job = simulate(
        client_a,
        {
            "document": policy_document(rules=SIM_RULES),
            "since": since.isoformat(),
            "until": until.isoformat(),
        },
        django_capture_on_commit_callbacks,
    )
    assert job["status"] == "succeeded" and job["error"] is None
    assert job["progress"] == {
        "processed": 6,
        "total": 6,
        "max_decisions": 50_000,
        "percent": 100.0,
    }
    report = job["result"]
    assert report["capped"] is False
    # d1 (150 prod) and d3 (200 prod) -> REQUIRE_APPROVAL by big-prod; d5 (120 prod, ml) matches
    # big-prod first (first match wins) -> REQUIRE_APPROVAL; d4 stays DENY (the waterfall still
    # fails under the approval rule); d0 (50) and d2 (dev) unchanged; d6 is outside the window.
    assert report["evaluated"] == 6 and report["skipped"] == 0
    assert report["before"] == {
        "ALLOW": 5,
        "ALLOW_WITH_CREDITS": 0,
        "REQUIRE_APPROVAL": 0,
        "DENY": 1,
    }
    assert report["after"] == {
        "ALLOW": 2,
        "ALLOW_WITH_CREDITS": 0,
        "REQUIRE_APPROVAL": 3,
        "DENY": 1,
    }
    changed = {row["decision_id"]: row for row in report["changed"]}
    assert set(changed) == {made[1]["decision_id"], made[3]["decision_id"], made[5]["decision_id"]}
    assert all(row["changed_by_rule"] == "big-prod" for row in changed.values())
    assert changed[made[1]["decision_id"]]["before"]["outcome"] == "ALLOW"
    assert changed[made[1]["decision_id"]]["after"] == {
        "outcome": "REQUIRE_APPROVAL",
        "reason_code": "APPROVAL_REQUIRED",
        "rule_id": "big-prod",
    }
    assert report["changed_count"] == 3 and report["truncated"] is False
    assert (LedgerEntry.objects.count(), Decision.objects.count()) == (
        ledger_before,
        decisions_before,
    )


def test_simulating_the_published_version_changes_nothing(
    client_a, window, django_capture_on_commit_callbacks
):
    _, since, until = window
    report = simulate(
        client_a,
        {"version": 1, "since": since.isoformat(), "until": until.isoformat()},
        django_capture_on_commit_callbacks,
    )["result"]
    assert report["changed_count"] == 0 and report["before"] == report["after"]


def test_simulation_accepts_yaml_text_and_rejects_bad_input(
    client_a, window, django_capture_on_commit_callbacks
):
    _, since, until = window
    yaml_text = "version: 1\nrules:\n  - id: ml-deny\n    when: \"'team' in request.labels\"\n    then: deny\n"
    report = simulate(
        client_a,
        {"document": yaml_text, "since": since.isoformat(), "until": until.isoformat()},
        django_capture_on_commit_callbacks,
    )["result"]
    assert report["changed_count"] == 1 and report["changed"][0]["changed_by_rule"] == "ml-deny"
    bad = client_a.post(
        "/api/v1/policies/simulate",
        {
            "document": "version: 1\nrules: [{id: x, when: 'nope(', then: deny}]\n",
            "since": since.isoformat(),
        },
        format="json",
    )
    assert assert_problem(bad, 400, "POLICY_INVALID")["errors"][0]["field"] == "rules[0].when"
    both = client_a.post(
        "/api/v1/policies/simulate",
        {"version": 1, "document": {"version": 1}, "since": since.isoformat()},
        format="json",
    )
    assert_problem(both, 400, "VALIDATION_FAILED")
    backwards = client_a.post(
        "/api/v1/policies/simulate",
        {"version": 1, "since": until.isoformat(), "until": since.isoformat()},
        format="json",
    )
    assert_problem(backwards, 400, "SIMULATION_WINDOW_INVALID")
    garbage = client_a.post(
        "/api/v1/policies/simulate", {"version": 1, "since": "yesterday"}, format="json"
    )
    assert_problem(garbage, 400, "SIMULATION_WINDOW_INVALID")
    missing = client_a.post(
        "/api/v1/policies/simulate", {"version": 99, "since": since.isoformat()}, format="json"
    )
    assert_problem(missing, 404, "POLICY_NOT_FOUND")


def test_policy_simulate_command_prints_a_table(tenant, window, tmp_path):
    _, since, until = window
    path = tmp_path / "candidate.yaml"
    path.write_text(
        "version: 1\nrules:\n"
        "  - id: big-prod\n    when: request.env_class == 'prod' && request.amount_usd > 100.0\n    then: require_approval\n"
    )
    out = io.StringIO()
    call_command(
        "policy_simulate",
        "--tenant",
        "acme",
        "--file",
        str(path),
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        stdout=out,
    )
    text = out.getvalue()
    assert "Decisions replayed: 6 (skipped: 0)" in text
    assert "REQUIRE_APPROVAL           0       3      +3" in text
    assert "Changed: 3" in text and text.count("big-prod") == 3
