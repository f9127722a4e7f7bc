"""Policy versions over the API, and how the published policy drives the gate."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from controlplane.audit.chain import control_chain
from controlplane.audit.models import LedgerEntry
from controlplane.audit.verify import verify_ledger
from enforcement.models import BudgetPeriod, Decision, Policy, Reservation
from tests import factories
from tests.api_contracts import IsolationCase, TenantIsolationContract, assert_problem
from tests.enforcement.helpers import policy_document, publish_policy, set_gate_settings

pytestmark = pytest.mark.django_db
GATE = "/api/v1/gate/decisions"

GOOD_YAML = """\
version: 1
description: Big prod changes need a human
environments:
  prod: [prod]
rules:
  - id: big-prod
    when: request.env_class == 'prod' && request.amount_usd > 500.0
    then: require_approval
    reason_code: BIG_PROD_CHANGE
    message: Prod changes above 500 USD need FinOps approval.
    approvers: {groups: [finops], quorum: 2}
  - id: never
    when: 1 > 2
    then: deny
"""


@pytest.fixture
def payments(tenant):
    return factories.make_project(tenant, "payments")


def post_yaml(client, text, content_type="application/yaml"):
    return client.generic("POST", "/api/v1/policies", text.encode(), content_type=content_type)


def gate(client, **body):
    body.setdefault("project", "payments")
    body.setdefault("environment", "prod")
    return client.post(GATE, body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_new_tenants_start_with_a_published_default_policy(tenant, client_a):
    body = client_a.get("/api/v1/policies").json()
    assert [(p["version"], p["state"]) for p in body["results"]] == [(1, "published")]
    detail = client_a.get("/api/v1/policies/1").json()
    assert detail["document"]["modes"]["default"] == {"prod": "hard", "nonprod": "hard"}
    assert len(detail["sha256"]) == 64


def test_create_draft_from_yaml_keeps_text_and_warnings(client_a):
    response = post_yaml(client_a, GOOD_YAML)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 2 and body["state"] == "draft"
    assert body["source_text"] == GOOD_YAML and body["source_format"] == "yaml"
    assert body["warnings"][0] == {
        "field": "rules[1].when",
        "message": "This rule can never match (always false).",
        "code": "never_matches",
        "line": 13,
    }
    # The rule routes to a group this tenant does not have (test_policy_routing covers it).
    assert [w["code"] for w in body["warnings"][1:]] == ["unknown_approver_group"]
    assert body["document"]["rules"][0]["approvers"] == {"groups": ["finops"], "quorum": 2}


def test_create_draft_from_json(client_a):
    response = client_a.post(
        "/api/v1/policies", {"version": 1, "unbudgeted": "deny"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["source_format"] == "json"
    assert response.json()["document"]["unbudgeted"] == "deny"


def test_invalid_document_lists_every_error_and_saves_nothing(client_a, tenant):
    text = (
        "version: 1\n"
        "modes: {default: {prod: strict}}\n"
        "rules:\n"
        "  - id: a\n"
        "    when: request.amount_usd >\n"
        "    then: deny\n"
        "  - id: b\n"
        "    when: budgett.exists\n"
        "    then: deny\n"
        "colour: blue\n"
    )
    response = post_yaml(client_a, text)
    body = assert_problem(response, 400, "POLICY_INVALID")
    errors = {(e["field"], e["code"], e.get("line")) for e in body["errors"]}
    assert ("modes.default.prod", "enum", 2) in errors
    assert ("colour", "unknown_field", 10) in errors
    assert Policy.objects.filter(tenant=tenant).count() == 1
    # schema errors stop before CEL; a schema-valid document reports both CEL problems
    body = assert_problem(
        post_yaml(client_a, text.replace("strict", "hard").replace("colour: blue\n", "")),
        400,
        "POLICY_INVALID",
    )
    assert {(e["field"], e["code"], e["line"]) for e in body["errors"]} == {
        ("rules[0].when", "cel_syntax", 5),
        ("rules[1].when", "cel_unknown_variable", 8),
    }


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "code"),
    [
        (b"", "application/yaml", 400, "POLICY_INVALID"),
        (b"version: 1\nrules: [\n", "application/yaml", 400, "POLICY_INVALID"),
        (b'{"version": 1,', "application/json", 400, "POLICY_INVALID"),
        (b"\xff\xfe", "application/yaml", 400, "POLICY_INVALID"),
        (b"version=1", "application/x-www-form-urlencoded", 415, None),
    ],
)
def test_bad_bodies_are_problems(client_a, payload, content_type, status, code):
    response = client_a.generic("POST", "/api/v1/policies", payload, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/problem+json")
    if code:
        assert response.json()["code"] == code


def test_publish_retires_the_previous_version_and_is_a_ledger_event(client_a, tenant):
    assert post_yaml(client_a, GOOD_YAML).status_code == 201
    response = client_a.post("/api/v1/policies/2/publish")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "published"
    states = dict(Policy.objects.filter(tenant=tenant).values_list("version", "state"))
    assert states == {1: "retired", 2: "published"}
    events = LedgerEntry.objects.filter(chain=control_chain(tenant.id), kind="policy.published")
    assert [e.payload["version"] for e in events.order_by("seq")] == [1, 2]
    assert events.order_by("seq").last().payload["previous_version"] == 1
    assert verify_ledger(tenant_id=tenant.id).ok
    assert_problem(client_a.post("/api/v1/policies/2/publish"), 409, "POLICY_ALREADY_PUBLISHED")
    assert_problem(client_a.post("/api/v1/policies/9/publish"), 404, "NOT_FOUND")


def test_rollback_publishes_an_old_version_as_a_new_one(client_a, tenant):
    post_yaml(client_a, GOOD_YAML)
    client_a.post("/api/v1/policies/2/publish")
    response = client_a.post("/api/v1/policies/1/publish")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 3 and body["rolled_back_from"] == 1 and body["state"] == "published"
    v1 = Policy.objects.get(tenant=tenant, version=1)
    assert body["sha256"] == v1.sha256 and body["document"] == v1.document
    assert v1.state == "retired"
    assert Decision.objects.count() == 0


def test_published_versions_are_immutable(client_a, tenant):
    policy = Policy.objects.get(tenant=tenant, version=1)
    policy.document = {**policy.document, "unbudgeted": "deny"}
    with pytest.raises(ValueError, match="immutable"):
        policy.save()
    fresh = Policy.objects.get(pk=policy.pk)
    assert fresh.document["unbudgeted"] == "allow"
    for method in ("put", "patch", "delete"):
        response = getattr(client_a, method)("/api/v1/policies/1", {}, format="json")
        assert response.status_code == 405


def test_policy_scopes_are_enforced(api_client, tenant):
    _, plaintext = factories.make_api_key(tenant, scopes=["policies:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api_client.get("/api/v1/policies").status_code == 200
    assert_problem(post_yaml(api_client, GOOD_YAML), 403, "SCOPE_MISSING")
    assert_problem(api_client.post("/api/v1/policies/1/publish"), 403, "SCOPE_MISSING")


def test_schema_endpoint_serves_the_json_schema(client_a):
    body = client_a.get("/api/v1/policies/schema").json()
    assert body["$id"] == "urn:tollgate:policy:v1" and "rules" in body["properties"]


def test_decision_records_the_policy_version_and_hash(client_a, tenant, payments):
    policy = set_gate_settings(tenant, unbudgeted="allow")
    body = gate(client_a, estimated_cost_usd="5.00").json()
    assert body["policy"] == {"version": policy.version, "sha256": policy.sha256}
    decision = Decision.objects.get(pk=body["decision_id"])
    assert (decision.policy_version, decision.policy_sha256) == (policy.version, policy.sha256)
    assert decision.snapshot == {"budgets": [], "grants": []}


# --- modes x environment classes ------------------------------------------------------------

MATRIX = [
    # mode, environment, expected outcome, evaluated, enforced, reserved micros on the budget
    ("hard", "prod", "DENY", "DENY", True, 0),
    ("hard", "dev", "DENY", "DENY", True, 0),
    ("soft", "prod", "ALLOW", "DENY", False, 150_000_000),
    ("soft", "dev", "ALLOW", "DENY", False, 150_000_000),
    ("shadow", "prod", "ALLOW", "DENY", False, 0),
    ("shadow", "dev", "ALLOW", "DENY", False, 0),
]


@pytest.mark.parametrize(
    ("mode", "environment", "outcome", "evaluated", "enforced", "held"), MATRIX
)
def test_mode_matrix_over_budget(
    client_a, tenant, payments, mode, environment, outcome, evaluated, enforced, held
):
    other = "hard"  # the other class stays hard: proves the class lookup, not a global switch
    env_class = "prod" if environment == "prod" else "nonprod"
    modes = {"prod": other, "nonprod": other, env_class: mode}
    set_gate_settings(tenant, modes={"*": modes})
    budget = factories.make_budget(tenant, "100.00", project=payments, environment=environment)
    body = gate(client_a, environment=environment, estimated_cost_usd="150.00").json()
    assert (body["outcome"], body["evaluated_outcome"], body["enforced"], body["mode"]) == (
        outcome,
        evaluated,
        enforced,
        mode,
    )
    assert body["breach"] is (mode != "hard")
    assert BudgetPeriod.objects.get(budget=budget).reserved_micros == held


def test_mode_per_source_overrides_the_default(client_a, tenant, payments):
    set_gate_settings(
        tenant, modes={"*": {"prod": "hard", "nonprod": "hard"}, "kubernetes": {"prod": "shadow"}}
    )
    factories.make_budget(tenant, "10.00", project=payments)
    assert (
        gate(client_a, source="kubernetes", estimated_cost_usd="50.00").json()["outcome"] == "ALLOW"
    )
    assert (
        gate(client_a, source="terraform", estimated_cost_usd="50.00").json()["outcome"] == "DENY"
    )


# --- rules ---------------------------------------------------------------------------------


def test_first_matching_rule_wins_in_document_order(client_a, tenant, payments):
    set_gate_settings(
        tenant,
        rules=[
            {
                "id": "gpu-nonprod",
                "when": "request.labels.team == 'ml' && request.env_class == 'nonprod'",
                "then": "deny",
                "reason_code": "GPU_NOT_IN_DEV",
                "message": "No GPUs in dev.",
                "remediation": "Use the shared GPU pool.",
            },
            {
                "id": "ml-anything",
                "when": "request.labels.team == 'ml'",
                "then": "require_approval",
            },
        ],
    )
    factories.make_budget(tenant, "1000.00", project=payments)
    dev = gate(client_a, environment="dev", labels={"team": "ml"}, estimated_cost_usd="5.00").json()
    assert (dev["outcome"], dev["reason_code"], dev["rule_id"]) == (
        "DENY",
        "GPU_NOT_IN_DEV",
        "gpu-nonprod",
    )
    assert dev["message"] == "No GPUs in dev." and dev["remediation"] == "Use the shared GPU pool."
    prod = gate(client_a, labels={"team": "ml"}, estimated_cost_usd="5.00").json()
    assert (prod["outcome"], prod["rule_id"]) == ("REQUIRE_APPROVAL", "ml-anything")
    assert prod["reservation"]["state"] == "pending"


def test_allow_rule_bypasses_the_approval_threshold(client_a, tenant, payments):
    set_gate_settings(
        tenant,
        approval_threshold_micros=10_000_000,
        rules=[{"id": "trusted", "when": "request.requester == 'release-bot'", "then": "allow"}],
    )
    factories.make_budget(tenant, "1000.00", project=payments)
    assert (
        gate(client_a, requester="release-bot", estimated_cost_usd="50.00").json()["outcome"]
        == "ALLOW"
    )
    assert (
        gate(client_a, requester="alice", estimated_cost_usd="50.00").json()["outcome"]
        == "REQUIRE_APPROVAL"
    )


def test_rules_see_budget_and_context(client_a, tenant, payments):
    set_gate_settings(
        tenant,
        rules=[
            {
                "id": "nearly-full",
                "when": "budget.exists && budget.utilization >= 0.5",
                "then": "deny",
                "reason_code": "BUDGET_NEARLY_FULL",
            }
        ],
    )
    factories.make_budget(tenant, "100.00", project=payments)
    assert gate(client_a, estimated_cost_usd="60.00").json()["outcome"] == "ALLOW"
    second = gate(client_a, estimated_cost_usd="1.00").json()
    assert (second["outcome"], second["reason_code"]) == ("DENY", "BUDGET_NEARLY_FULL")


def test_credits_only_rule_draws_only_from_credits(client_a, tenant, payments):
    set_gate_settings(
        tenant,
        rules=[
            {
                "id": "promo",
                "when": "request.labels.promo == 'yes'",
                "then": "allow_with_credits_only",
            }
        ],
    )
    budget = factories.make_budget(tenant, "1000.00", project=payments)
    grant = factories.make_grant(tenant, "20.00")
    body = gate(client_a, labels={"promo": "yes"}, estimated_cost_usd="15.00").json()
    assert body["outcome"] == "ALLOW_WITH_CREDITS", body
    assert BudgetPeriod.objects.get(budget=budget).reserved_micros == 0
    grant.refresh_from_db()
    assert grant.remaining_micros == 5_000_000


@pytest.mark.parametrize(
    ("answer", "outcome"), [(None, "DENY"), ("deny", "DENY"), ("allow", "ALLOW")]
)
def test_rule_runtime_error_is_recorded_counted_and_answered_by_on_rule_error(
    client_a, tenant, payments, answer, outcome
):
    """A rule error is the request's doing (here: a missing label), so it is answered by the
    policy's on_rule_error (deny unless it says allow), never by the gate's fail mode."""
    settings = {"on_rule_error": {"prod": answer, "nonprod": "deny"}} if answer else {}
    set_gate_settings(
        tenant,
        fail_modes={"prod": "open", "nonprod": "open"},
        rules=[{"id": "needs-team", "when": "request.labels.team == 'ml'", "then": "deny"}],
        **settings,
    )
    budget = factories.make_budget(tenant, "1000.00", project=payments)
    errors_before = metric("policy_rule_errors_total", rule_id="needs-team")
    fails_before = metric("gate_fail_open_total"), metric("gate_fail_closed_total")
    response = gate(client_a, labels={}, estimated_cost_usd="5.00")  # no 'team' label: KeyError
    assert response.status_code == 201
    body = response.json()
    assert (body["outcome"], body["reason_code"], body["fail_open"]) == (
        outcome,
        "POLICY_RULE_ERROR",
        False,
    )
    assert (
        body["rule_errors"][0]["rule_id"] == "needs-team"
        and "team" in body["rule_errors"][0]["error"]
    )
    assert body["reservation"] is None
    assert BudgetPeriod.objects.get(budget=budget).reserved_micros == 0
    decision = Decision.objects.get(pk=body["decision_id"])
    assert decision.fail_open is False and decision.reason_code == "POLICY_RULE_ERROR"
    assert metric("policy_rule_errors_total", rule_id="needs-team") == errors_before + 1
    assert (metric("gate_fail_open_total"), metric("gate_fail_closed_total")) == fails_before


# --- fail modes on a real database failure --------------------------------------------------


@pytest.fixture
def broken_decision_table(django_db_blocker):
    """A trigger that makes every decision insert fail inside PostgreSQL (a real DB error with
    the SQLSTATE of an outage, 57P01 admin_shutdown: the fail mode answers)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION tg_test_fail() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'injected outage' USING ERRCODE = '57P01'; END $$ "
            "LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER tg_test_fail BEFORE INSERT ON enforcement_decision "
            "FOR EACH ROW EXECUTE FUNCTION tg_test_fail()"
        )
    yield
    # the test transaction is rolled back, taking the trigger with it


@pytest.mark.parametrize(
    ("environment", "status", "outcome"), [("prod", 503, None), ("dev", 200, "ALLOW")]
)
def test_db_failure_answers_by_fail_mode_and_writes_nothing(
    client_a, tenant, payments, broken_decision_table, environment, status, outcome
):
    budget = factories.make_budget(tenant, "100.00", project=payments, environment=environment)
    ledger_before = LedgerEntry.objects.count()
    response = gate(client_a, environment=environment, estimated_cost_usd="5.00")
    assert response.status_code == status, response.content
    if outcome is None:
        body = assert_problem(response, 503, "GATE_UNAVAILABLE")
        assert body["fail_open"] is False and body["fail_cause"] == "database"
        assert response["Retry-After"] == "5"
    else:
        body = response.json()
        assert body["outcome"] == "ALLOW" and body["fail_open"] is True
        assert body["reservation"] is None and body["decision_id"] is None
    assert Decision.objects.count() == 0 and Reservation.objects.count() == 0
    assert LedgerEntry.objects.count() == ledger_before
    assert BudgetPeriod.objects.filter(budget=budget, reserved_micros__gt=0).count() == 0


class TestPolicyTenantIsolation(TenantIsolationContract):
    isolation_cases = [
        IsolationCase(
            name="policy-detail",
            method="GET",
            make=lambda tenant: _draft(tenant),
            path=lambda obj: f"/api/v1/policies/{obj.version}",
        ),
        IsolationCase(
            name="policy-publish",
            method="POST",
            make=lambda tenant: _draft(tenant),
            path=lambda obj: f"/api/v1/policies/{obj.version}/publish",
        ),
    ]


def _draft(tenant):
    from enforcement.services.policies import policy_create_draft

    # tenant B has only its default version 1, so version 2+ exists only in tenant A
    policy_create_draft(tenant=tenant, data=policy_document())
    return policy_create_draft(tenant=tenant, data=policy_document(unbudgeted="deny"))


def test_publish_policy_helper_round_trip(tenant):
    policy = publish_policy(tenant, text="version: 1\nunbudgeted: deny\n")
    assert policy.state == "published" and policy.document["unbudgeted"] == "deny"


def test_approval_routing_comes_from_the_matching_rule(client_a, tenant, payments):
    from enforcement.models import ApprovalRequest

    set_gate_settings(
        tenant,
        rules=[
            {
                "id": "big-prod",
                "when": "request.amount_usd > 100.0",
                "then": "require_approval",
                "approvers": {"groups": ["finops"], "quorum": 2},
            }
        ],
    )
    factories.make_budget(tenant, "1000.00", project=payments)
    body = gate(client_a, estimated_cost_usd="150.00").json()
    assert body["outcome"] == "REQUIRE_APPROVAL" and body["approval"]["required_approvals"] == 2
    approval = ApprovalRequest.objects.get(pk=body["approval"]["id"])
    assert approval.routing["rule_id"] == "big-prod"
    assert approval.routing["groups"] == ["finops"] and approval.routing["roles"] == []
    assert approval.routing["separate_from_requester"] is True  # prod default
    dev = gate(client_a, environment="dev", estimated_cost_usd="150.00").json()
    dev_routing = ApprovalRequest.objects.get(pk=dev["approval"]["id"]).routing
    assert dev_routing["separate_from_requester"] is False


def test_counters_are_wide_enough_that_real_amounts_never_overflow(client_a, tenant, payments):
    """Soft mode holds past the limit; at the maximum amount (1e11 USD) a 64-bit counter would
    overflow at the 93rd hold. Counters are numeric(38,0): the 93rd is recorded like the rest."""
    set_gate_settings(
        tenant,
        modes={"*": {"prod": "soft", "nonprod": "soft"}},
        fail_modes={"prod": "open", "nonprod": "open"},
    )
    factories.make_budget(tenant, "1.00", project=payments)
    huge = "100000000000"
    statuses = [gate(client_a, estimated_cost_usd=huge).status_code for _ in range(93)]
    assert statuses == [201] * 93
    assert Decision.objects.filter(tenant=tenant).count() == 93
    period = BudgetPeriod.objects.get(budget__tenant=tenant)
    assert period.reserved_micros == 93 * 10**17 > 2**63
