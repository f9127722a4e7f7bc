"""Budgets, credit grants and decisions over HTTP: CRUD, validation, filters, isolation."""

from __future__ import annotations

import pytest

from controlplane.audit.models import LedgerEntry
from controlplane.audit.tasks import ledger_verify_run_task
from enforcement.models import Budget, BudgetPeriod, CreditGrant
from tests import factories
from tests.api_contracts import IsolationCase, TenantIsolationContract, assert_problem
from tests.enforcement.helpers import gate_service, set_gate_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def payments(tenant):
    return factories.make_project(tenant, "payments")


# --- budgets ---------------------------------------------------------------------------------


def test_create_budget_scopes(client_a, tenant, payments):
    tenant_wide = client_a.post("/api/v1/budgets", {"limit_usd": "1000.00"}, format="json")
    assert tenant_wide.status_code == 201, tenant_wide.content
    body = tenant_wide.json()
    assert body["scope"] == {"project": None, "environment": None}
    assert body["period"] == "monthly" and body["limit_usd"] == "1000.00"
    assert body["reserved_usd"] == "0.00" and body["spent_usd"] == "0.00"
    assert body["available_usd"] == "1000.00"
    env = client_a.post(
        "/api/v1/budgets",
        {
            "name": "payments prod daily",
            "scope": {"project": "payments", "environment": "prod"},
            "period": "daily",
            "limit_usd": "50.5",
        },
        format="json",
    ).json()
    assert env["scope"] == {"project": "payments", "environment": "prod"}
    assert env["period"] == "daily" and env["limit_usd"] == "50.50"
    assert LedgerEntry.objects.filter(kind="budget.created").count() == 2


def test_budget_shows_current_period_usage(client_a, tenant, payments):
    budget = factories.make_budget(tenant, "100.00", project=payments)
    gate_service(tenant, micros=30_000_000)
    body = client_a.get(f"/api/v1/budgets/{budget.id}").json()
    assert body["reserved_usd"] == "30.00" and body["available_usd"] == "70.00"
    period = BudgetPeriod.objects.get(budget=budget)
    assert body["current_period"]["id"] == period.id
    listed = client_a.get("/api/v1/budgets").json()
    assert [b["id"] for b in listed["results"]] == [budget.id]
    assert listed["results"][0]["reserved_usd"] == "30.00"


def test_duplicate_scope_is_409(client_a, payments):
    body = {"scope": {"project": "payments"}, "limit_usd": "10.00"}
    assert client_a.post("/api/v1/budgets", body, format="json").status_code == 201
    assert_problem(client_a.post("/api/v1/budgets", body, format="json"), 409, "BUDGET_SCOPE_TAKEN")
    tenant_body = {"limit_usd": "10.00"}
    assert client_a.post("/api/v1/budgets", tenant_body, format="json").status_code == 201
    assert_problem(
        client_a.post("/api/v1/budgets", tenant_body, format="json"), 409, "BUDGET_SCOPE_TAKEN"
    )


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "VALIDATION_FAILED", "limit_usd"),
        ({"limit_usd": "-5.00"}, "VALIDATION_FAILED", "limit_usd"),
        ({"limit_usd": "ten"}, "VALIDATION_FAILED", "limit_usd"),
        ({"limit_usd": 10}, "VALIDATION_FAILED", "limit_usd"),
        ({"limit_usd": "1.0000001"}, "VALIDATION_FAILED", "limit_usd"),
        ({"limit_usd": "1.00", "period": "weekly"}, "VALIDATION_FAILED", "period"),
        ({"limit_usd": "1.00", "scope": {"project": "nope"}}, "UNKNOWN_PROJECT", "scope.project"),
        (
            {"limit_usd": "1.00", "scope": {"environment": "prod"}},
            "VALIDATION_FAILED",
            "scope.environment",
        ),
        (
            {"limit_usd": "1.00", "scope": {"project": "payments", "environment": "bad env"}},
            "VALIDATION_FAILED",
            "scope.environment",
        ),
        ({"limit_usd": "1.00", "owner": "me"}, "VALIDATION_FAILED", "owner"),
    ],
)
def test_create_budget_bad_input(client_a, payments, body, code, field):
    problem = assert_problem(client_a.post("/api/v1/budgets", body, format="json"), 400, code)
    assert field in {e["field"] for e in problem["errors"]}, problem["errors"]
    assert not Budget.objects.exists()


def test_patch_budget_limit_moves_current_period(client_a, tenant, payments):
    budget = factories.make_budget(tenant, "100.00", project=payments)
    gate_service(tenant, micros=10_000_000)
    response = client_a.patch(
        f"/api/v1/budgets/{budget.id}", {"limit_usd": "250.00", "name": "bigger"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["limit_usd"] == "250.00" and body["name"] == "bigger"
    assert body["available_usd"] == "240.00"
    assert BudgetPeriod.objects.get(budget=budget).limit_micros == 250_000_000
    change = LedgerEntry.objects.get(kind="budget.limit_changed")
    assert change.payload == {"budget": budget.id, "from": 100_000_000, "to": 250_000_000}


@pytest.mark.parametrize(
    "body", [{"limit_usd": "-1"}, {"limit_usd": "x"}, {"period": "daily"}, {"scope": {}}]
)
def test_patch_budget_bad_input(client_a, tenant, body):
    budget = factories.make_budget(tenant, "100.00")
    assert_problem(client_a.patch(f"/api/v1/budgets/{budget.id}", body, format="json"), 400)
    budget.refresh_from_db()
    assert budget.limit_micros == 100_000_000 and budget.period == "monthly"


def test_budget_needs_scopes(api_client, tenant):
    _, plaintext = factories.make_api_key(tenant, scopes=["budgets:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api_client.get("/api/v1/budgets").status_code == 200
    assert_problem(
        api_client.post("/api/v1/budgets", {"limit_usd": "1.00"}, format="json"),
        403,
        "SCOPE_MISSING",
    )


# --- credit grants ---------------------------------------------------------------------------


def test_create_list_and_void_grant(client_a, tenant):
    response = client_a.post(
        "/api/v1/credit-grants",
        {"pool": "emergency", "amount_usd": "25.00", "priority": 5, "note": "incident"},
        format="json",
    )
    assert response.status_code == 201, response.content
    grant = response.json()
    assert grant["pool"] == "emergency" and grant["remaining_usd"] == "25.00"
    assert grant["state"] == "active" and grant["priority"] == 5
    listed = client_a.get("/api/v1/credit-grants").json()["results"]
    assert [g["id"] for g in listed] == [grant["id"]]
    voided = client_a.post(f"/api/v1/credit-grants/{grant['id']}/void")
    assert voided.status_code == 200 and voided.json()["state"] == "void"
    assert_problem(client_a.post(f"/api/v1/credit-grants/{grant['id']}/void"), 409, "GRANT_VOIDED")
    kinds = list(
        LedgerEntry.objects.filter(kind__startswith="credit_grant.").values_list("kind", flat=True)
    )
    assert sorted(kinds) == ["credit_grant.created", "credit_grant.voided"]


def test_voided_grant_is_not_drawn(client_a, tenant, payments):
    factories.make_budget(tenant, "10.00", project=payments)
    grant = factories.make_grant(tenant, "100.00")
    client_a.post(f"/api/v1/credit-grants/{grant.id}/void")
    body = gate_service(tenant, micros=20_000_000)
    assert body["outcome"] == "DENY"
    grant.refresh_from_db()
    assert grant.remaining_micros == 100_000_000


def test_grant_remaining_never_below_zero(client_a, tenant, payments):
    factories.make_budget(tenant, "0.00", project=payments)
    grant = factories.make_grant(tenant, "30.00")
    outcomes = [gate_service(tenant, micros=12_000_000)["outcome"] for _ in range(4)]
    assert outcomes == ["ALLOW_WITH_CREDITS", "ALLOW_WITH_CREDITS", "DENY", "DENY"]
    grant.refresh_from_db()
    assert grant.remaining_micros == 6_000_000
    body = client_a.get("/api/v1/credit-grants").json()["results"][0]
    assert body["remaining_usd"] == "6.00"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "amount_usd"),
        ({"amount_usd": "0.00"}, "amount_usd"),
        ({"amount_usd": "-3.00"}, "amount_usd"),
        ({"amount_usd": "3e2"}, "amount_usd"),
        ({"amount_usd": "1.00", "pool": "gold"}, "pool"),
        ({"amount_usd": "1.00", "priority": -1}, "priority"),
        ({"amount_usd": "1.00", "expires_at": "yesterday"}, "expires_at"),
        (
            {
                "amount_usd": "1.00",
                "effective_at": "2026-12-01T00:00:00Z",
                "expires_at": "2026-11-01T00:00:00Z",
            },
            "expires_at",
        ),
    ],
)
def test_create_grant_bad_input(client_a, body, field):
    problem = assert_problem(client_a.post("/api/v1/credit-grants", body, format="json"), 400)
    assert field in {e["field"] for e in problem["errors"]}, problem["errors"]
    assert not CreditGrant.objects.exists()


# --- decisions -------------------------------------------------------------------------------


def test_decisions_list_filters(client_a, tenant, payments):
    factories.make_project(tenant, "search")
    factories.make_budget(tenant, "100.00", project=payments)
    allow = gate_service(tenant, micros=10_000_000)
    deny = gate_service(tenant, micros=500_000_000)
    dev = gate_service(tenant, micros=1_000_000, environment="dev")
    other = gate_service(tenant, micros=1_000_000, project="search")

    def ids(query=""):
        response = client_a.get(f"/api/v1/decisions{query}")
        assert response.status_code == 200, response.content
        return {d["id"] for d in response.json()["results"]}

    all_ids = {d["decision_id"] for d in (allow, deny, dev, other)}
    assert ids() == all_ids
    assert ids("?outcome=DENY") == {deny["decision_id"]}
    assert ids("?outcome=allow") == all_ids - {deny["decision_id"]}
    assert ids("?project=search") == {other["decision_id"]}
    assert ids("?environment=dev") == {dev["decision_id"]}
    assert ids("?project=payments&environment=prod") == {allow["decision_id"], deny["decision_id"]}
    assert ids("?since=2000-01-01T00:00:00Z") == all_ids
    assert ids("?since=2999-01-01T00:00:00Z") == set()
    assert ids("?project=unknown") == set()


def test_decisions_since_must_be_a_timestamp(client_a):
    problem = assert_problem(client_a.get("/api/v1/decisions?since=yesterday"), 400)
    assert problem["errors"][0]["field"] == "since"


def test_decision_detail(client_a, tenant, payments):
    factories.make_budget(tenant, "100.00", project=payments)
    body = gate_service(tenant, micros=10_000_000, action="deploy")
    detail = client_a.get(f"/api/v1/decisions/{body['decision_id']}").json()
    assert detail["outcome"] == "ALLOW" and detail["project"] == "payments"
    assert detail["amount_usd"] == "10.00"
    assert detail["reservation_id"] == body["reservation"]["id"]
    assert detail["request"]["action"] == "deploy"
    assert detail["response"]["decision_id"] == body["decision_id"]
    assert detail["waterfall"] == body["waterfall"]


def test_shadow_decision_has_no_reservation(client_a, tenant, payments):
    set_gate_settings(tenant, modes={"*": {"prod": "shadow", "nonprod": "shadow"}})
    body = gate_service(tenant, micros=10_000_000)
    detail = client_a.get(f"/api/v1/decisions/{body['decision_id']}").json()
    assert detail["mode"] == "shadow" and detail["reservation_id"] is None


def test_lists_never_show_another_tenant(client_a, client_b, tenant, payments):
    factories.make_budget(tenant, "100.00", project=payments)
    factories.make_grant(tenant, "5.00")
    gate_service(tenant, micros=1_000_000)
    for path in ("/api/v1/budgets", "/api/v1/credit-grants", "/api/v1/decisions"):
        assert client_a.get(path).json()["results"], path
        assert client_b.get(path).json()["results"] == [], path
    ledger_b = client_b.get("/api/v1/ledger").json()["results"]
    assert ledger_b and tenant.id not in str(ledger_b)


# --- isolation -------------------------------------------------------------------------------


def _budget(tenant):
    if not Budget.objects.filter(tenant=tenant, project__isnull=True).exists():
        return factories.make_budget(tenant, "10.00")
    return Budget.objects.get(tenant=tenant, project__isnull=True)


class TestBudgetAndGrantTenantIsolation(TenantIsolationContract):
    isolation_cases = [
        IsolationCase(
            name="budget-detail",
            method="GET",
            make=_budget,
            path=lambda obj: f"/api/v1/budgets/{obj.pk}",
        ),
        IsolationCase(
            name="budget-patch",
            method="PATCH",
            make=_budget,
            path=lambda obj: f"/api/v1/budgets/{obj.pk}",
            body={"limit_usd": "20.00"},
        ),
        IsolationCase(
            name="credit-grant-void",
            method="POST",
            make=lambda tenant: factories.make_grant(tenant, "1.00"),
            path=lambda obj: f"/api/v1/credit-grants/{obj.pk}/void",
        ),
    ]

    def test_other_tenant_changes_nothing(self, isolation_case, tenant, client_b):
        obj = isolation_case.make(tenant)
        before = LedgerEntry.objects.count()
        self._call(client_b, isolation_case, obj)
        assert LedgerEntry.objects.count() == before


def test_ledger_endpoints_stay_inside_the_tenant(
    client_a, client_b, tenant, payments, django_capture_on_commit_callbacks
):
    factories.make_budget(tenant, "100.00", project=payments)
    body = gate_service(tenant, micros=1_000_000)
    period_id = body["reservation"]["allocations"][0]["period_id"]
    chain = f"bp:{period_id}"
    own = client_a.get(f"/api/v1/ledger?chain={chain}").json()["results"]
    assert own and all(e["chain"] == chain for e in own)
    assert client_b.get(f"/api/v1/ledger?chain={chain}").json()["results"] == []
    export = client_b.get("/api/v1/ledger/export?format=jsonl")
    assert export.status_code == 200
    exported = b"".join(export.streaming_content).decode()
    assert period_id not in exported and tenant.id not in exported
    for client in (client_a, client_b):
        with django_capture_on_commit_callbacks(execute=False):
            started = client.post("/api/v1/ledger/verify")
        assert started.status_code == 202
        ledger_verify_run_task(started.json()["id"])
    verify = client_b.get("/api/v1/ledger/verify").json()
    own_verify = client_a.get("/api/v1/ledger/verify").json()
    assert verify["ok"] and own_verify["ok"]
    assert verify["entries_checked"] < own_verify["entries_checked"]
    assert (
        client_b.get(f"/api/v1/ledger/verifications/{own_verify['verification_id']}").status_code
        == 404
    )
