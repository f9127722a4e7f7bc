"""Generated walks over every API route and method (issue 17 item 3).

The routes come from the URLconf, so a new endpoint is walked without anyone remembering to add
it. Two walks:

- scopes: a key holding every scope but the one a method requires gets 403 ``SCOPE_MISSING``;
  every method names its scope (fail closed).
- bindings: a key bound to payments/dev holding every scope is confined on every method: a
  method declaring no ``bound_keys`` rule is 403 ``KEY_BINDING_FORBIDS``; a ``Confine`` method
  shows only rows inside the binding (others are 404, lists leave them out); a method checked
  in its view has a case below (the walk fails when one is missing).

The walks cover every route of the merged API, the billing ones included: ``/tenant`` is
unconfined (nothing of one project), ``/budget-alerts`` is confined through the alert's budget,
``/reconciliations/imports`` (a bill covers the whole tenant) refuses a bound key. Routes
outside ``/api/v1`` (dashboard, admin, SCIM, payment webhooks, probes) answer to other
credentials: ``OUT_OF_REACH`` says why for each, and a test proves an API key opens none.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from billing.pricing import lookup as price_lookup
from billing.services import tenant_plan_set
from billing.services.prices import price_catalog_import
from controlplane.core.clock import db_now
from controlplane.tenancy.api.views_base import (
    CheckedInView,
    Confine,
    TenantScopedAPIView,
    Unconfined,
)
from controlplane.tenancy.models import ApiKey, Project
from controlplane.tenancy.scopes import all_scopes
from enforcement.models import (
    Action,
    ApprovalRequest,
    Budget,
    BudgetAlert,
    Decision,
    Reservation,
    RunTaskIntegration,
    SimulationJob,
)
from tests import factories
from tests.api_contracts import Route, api_routes, assert_problem, url_patterns
from tests.enforcement.helpers import gate_service

pytestmark = pytest.mark.django_db
LLM_PRICES = Path(__file__).resolve().parents[1] / "fixtures" / "llm" / "litellm_prices_subset.json"


# /api/v1 routes a caller signs rather than authenticates with an API key: why, and the test
# that proves an unsigned (or API-key) call is refused.
SIGNED = {
    "POST /api/v1/gate/terraform/run-task": "HCP Terraform signs the body with the run-task "
    "integration's HMAC key (X-TFC-Task-Signature); the integration fixes the project and "
    "environment (test_signed_routes_refuse_api_keys_and_unsigned_calls)",
}
ROUTES = [r for r in api_routes() if r.id not in SIGNED]


def test_the_walk_sees_the_whole_api():
    assert len(ROUTES) > 35
    assert all(issubclass(r.view, TenantScopedAPIView) for r in ROUTES), [
        r.id for r in ROUTES if not issubclass(r.view, TenantScopedAPIView)
    ]
    signed = {r.id: r.view for r in api_routes() if r.id in SIGNED}
    assert set(signed) == set(SIGNED)
    assert all(view.authentication_classes == [] and view.signed_by for view in signed.values())


@pytest.mark.parametrize("route_id", sorted(SIGNED))
def test_signed_routes_refuse_api_keys_and_unsigned_calls(world, route_id):
    method, path = route_id.split(" ")
    for client in (world["client"], APIClient()):
        response = _call(client, method, path + "?integration=rti_x", {"payload_version": 1})
        assert_problem(response, 401, "RUN_TASK_SIGNATURE_INVALID")


def _client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def _call(client, method: str, path: str, body: dict | None = None):
    call = getattr(client, method.lower())
    if method in ("GET", "DELETE"):
        return call(path)
    return call(path, body or {}, format="json")


def _fill(template: str, value) -> str:
    return re.sub(r"<(?:str|int|path):\w+>", str(value), template)


# --- scopes ------------------------------------------------------------------------------------

# Methods whose permission is not one scope: cancel takes gate:write (the requester's pipeline)
# or approvals:write (a person), tested in tests/enforcement/test_approvals.py.
SCOPE_EXCEPTIONS = {"POST /api/v1/approvals/<str:id>/cancel"}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.id not in SCOPE_EXCEPTIONS], ids=str)
def test_every_method_requires_its_scope(tenant, route):
    required = route.view.required_scopes.get(route.method)
    assert required, f"{route.id} names no required scope"
    _, plaintext = factories.make_api_key(tenant, scopes=[s for s in all_scopes() if s != required])
    response = _call(_client(plaintext), route.method, _fill(route.template, 1))
    assert assert_problem(response, 403, "SCOPE_MISSING")["required_scope"] == required
    _, only = factories.make_api_key(tenant, scopes=[required])
    response = _call(_client(only), route.method, _fill(route.template, 1))
    assert response.status_code != 403 or response.json()["code"] != "SCOPE_MISSING"


# --- bindings ----------------------------------------------------------------------------------


@pytest.fixture
def world(tenant):
    """Rows inside payments/dev and outside it (another environment, project, the tenant).

    The tenant is on the plan with every feature, so entitlements never answer before the
    binding does."""
    tenant_plan_set(tenant=tenant, plan="enterprise")
    price_catalog_import(text=LLM_PRICES.read_bytes(), source="walks")
    price_lookup.clear()
    payments = factories.make_project(tenant, "payments")
    search = factories.make_project(tenant, "search")
    factories.require_approval_above(tenant, "100.00")
    alice = factories.make_member(tenant, "alice", "owner")
    key, plaintext = factories.make_api_key(
        tenant, project=payments, environment="dev", user=alice, name="bound"
    )
    budgets = {
        "in": [factories.make_budget(tenant, "1000.00", project=payments, environment="dev")],
        "out": [
            factories.make_budget(tenant, "1000.00"),
            factories.make_budget(tenant, "1000.00", project=payments),
            factories.make_budget(tenant, "1000.00", project=search, environment="dev"),
            factories.make_budget(tenant, "1000.00", project=payments, environment="prod"),
        ],
    }
    scopes = {"in": [("payments", "dev")], "out": [("payments", "prod"), ("search", "dev")]}
    decisions, approvals = {"in": [], "out": []}, {"in": [], "out": []}
    for side, pairs in scopes.items():
        for project, environment in pairs:
            for micros in (5_000_000, 150_000_000):
                body = gate_service(tenant, micros=micros, project=project, environment=environment)
                decisions[side].append(Decision.objects.get(pk=body["decision_id"]))
                if body["approval"]:
                    approvals[side].append(ApprovalRequest.objects.get(pk=body["approval"]["id"]))
    reservations = {
        side: list(Reservation.objects.filter(decision__in=rows))
        for side, rows in decisions.items()
    }
    keys = {
        "in": [
            key,
            factories.make_api_key(
                tenant, scopes=["gate:write"], project=payments, environment="dev"
            )[0],
        ],
        "out": [
            factories.make_api_key(tenant, scopes=["gate:write"])[0],
            factories.make_api_key(tenant, scopes=["gate:write"], project=search)[0],
            factories.make_api_key(tenant, scopes=["gate:write"], project=payments)[0],
        ],
    }
    now = db_now()

    def job(project, environment):
        return SimulationJob.objects.create(
            tenant=tenant,
            policy_sha256="0" * 64,
            document={},
            since=now.replace(year=now.year - 1),
            until=now,
            project=project,
            environment=environment,
            max_decisions=10,
            created_at=now,
        )

    from enforcement.services.actions import action_request
    from enforcement.services.run_tasks import run_task_integration_create

    def action(project, environment):
        return action_request(
            tenant=tenant, kind="notify", project=project, environment=environment
        )[0]

    def run_task(project, environment):
        return run_task_integration_create(
            tenant=tenant, name="hcp", project=project, environment=environment
        )[0]

    return {
        "client": _client(plaintext),
        "key": key,
        "rows": {
            Decision: decisions,
            Reservation: reservations,
            ApprovalRequest: approvals,
            Budget: budgets,
            ApiKey: keys,
            Project: {"in": [payments], "out": [search]},
            SimulationJob: {"in": [job(payments, "dev")], "out": [job(None, ""), job(search, "")]},
            Action: {
                "in": [action(payments, "dev")],
                "out": [action(None, ""), action(payments, "prod"), action(search, "dev")],
            },
            RunTaskIntegration: {
                "in": [run_task(payments, "dev")],
                "out": [run_task(payments, "prod"), run_task(search, "dev")],
            },
            BudgetAlert: {
                side: [factories.make_budget_alert(budget) for budget in rows]
                for side, rows in budgets.items()
            },
        },
    }


BODIES = {
    "POST /api/v1/reservations/<str:id>/commit": {"actual_cost_usd": "1.00"},
    "POST /api/v1/reservations/<str:id>/extend": {"ttl_seconds": 60},
    "PATCH /api/v1/budgets/<str:id>": {"limit_usd": "5.00"},
    "POST /api/v1/actions/<str:id>/complete": {"epoch": 1},
    "POST /api/v1/actions/<str:id>/fail": {"epoch": 1},
}


def _rule(route: Route):
    return route.view.bound_keys.get(route.method)


def _ids(rows) -> set[str]:
    return {row.pk for row in rows}


@pytest.mark.parametrize("route", [r for r in ROUTES if _rule(r) is None], ids=str)
def test_tenant_wide_methods_refuse_a_bound_key(world, route):
    response = _call(world["client"], route.method, _fill(route.template, 1))
    assert_problem(response, 403, "KEY_BINDING_FORBIDS")


# Unconfined reads whose parameter is not a row id: the value that exists in the world.
UNCONFINED_VALUES = {"GET /api/v1/prices/<path:model>": "gpt-4o"}


@pytest.mark.parametrize("route", [r for r in ROUTES if isinstance(_rule(r), Unconfined)], ids=str)
def test_unconfined_methods_show_nothing_project_specific(world, route):
    assert route.method == "GET", "only reads may be unconfined"
    # policies/<int:version>: the tenant's version 1; prices/<path:model>: the catalog's model
    path = _fill(route.template, UNCONFINED_VALUES.get(route.id, 1))
    assert _call(world["client"], route.method, path).status_code == 200


CONFINED = [r for r in ROUTES if isinstance(_rule(r), Confine)]


@pytest.mark.parametrize("route", [r for r in CONFINED if r.has_param], ids=str)
def test_confined_methods_hide_rows_outside_the_binding(world, route):
    rows = world["rows"][route.view.model]
    assert rows["in"] and rows["out"], route.id
    body = BODIES.get(route.id, {})
    for row in rows["out"]:
        response = _call(world["client"], route.method, _fill(route.template, row.pk), body)
        assert_problem(response, 404, "NOT_FOUND")
    response = _call(world["client"], route.method, _fill(route.template, rows["in"][0].pk), body)
    assert response.status_code != 404 and response.status_code < 500, response.content[:300]
    if response.status_code == 403:
        assert response.json()["code"] != "KEY_BINDING_FORBIDS"


@pytest.mark.parametrize(
    "route", [r for r in CONFINED if not r.has_param and r.method == "GET"], ids=str
)
def test_confined_lists_leave_out_rows_outside_the_binding(world, route):
    rows = world["rows"][route.view.model]
    listed = {row["id"] for row in world["client"].get(route.template).json()["results"]}
    assert listed, route.id
    assert listed <= _ids(rows["in"]), listed - _ids(rows["in"])


def test_reconciliation_reaches_only_reservations_inside_the_binding(world):
    rows = world["rows"][Reservation]
    items = [
        {"reservation_id": r.pk, "invoiced_cost_usd": "1.00"} for r in rows["in"] + rows["out"]
    ]
    results = world["client"].post("/api/v1/reconciliations", {"items": items}, format="json")
    by_id = {row["reservation_id"]: row for row in results.json()["results"]}
    assert all(by_id[r.pk].get("code") == "NOT_FOUND" for r in rows["out"])
    assert all(by_id[r.pk].get("code") != "NOT_FOUND" for r in rows["in"])


# Methods that check the binding against their body: (outside request, expected code), inside.
def _gate(client, project, environment):
    return client.post(
        "/api/v1/gate/decisions",
        {"project": project, "environment": environment, "estimated_cost_usd": "1.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


def _key(client, project, environment):
    return client.post(
        "/api/v1/api-keys",
        {"name": "k", "scopes": ["gate:write"], "project": project, "environment": environment},
        format="json",
    )


def _budget(client, project, environment):
    scope = {"project": project, "environment": environment or None} if project else {}
    return client.post(
        "/api/v1/budgets",
        {"scope": scope, "period": "daily", "limit_usd": "10.00"},
        format="json",
    )


def _consume(client, project, environment):
    return client.post(
        "/api/v1/approval-tokens/consume",
        {
            "token": "a.b.c",
            "expected_project": project,
            "expected_environment": environment,
            "expected_fingerprint": "sha256:" + "0" * 64,
        },
        format="json",
    )


def _preflight(client, project, environment):
    return client.post(
        "/api/v1/gate/terraform/preflight",
        {
            "run_id": uuid.uuid4().hex,
            "project": project,
            "environment": environment,
            "monthly_delta_usd": "1.00",
        },
        format="json",
    )


def _cloudevent(client, project, environment):
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "/walk",
        "type": "com.example.spend",
        "data": {"project": project, "environment": environment, "estimated_cost_usd": "1.00"},
    }
    return client.generic(
        "POST",
        "/api/v1/gate/cloudevents",
        json.dumps(event),
        content_type="application/cloudevents+json",
    )


def _action(client, project, environment):
    return client.post(
        "/api/v1/actions",
        {"kind": "notify", "project": project, "environment": environment},
        format="json",
    )


def _run_task_integration(client, project, environment):
    return client.post(
        "/api/v1/integrations/terraform/run-tasks",
        {"name": "hcp", "project": project, "environment": environment},
        format="json",
    )


OTHER_SCOPES = [("search", "dev"), ("payments", "prod")]
# name: (call, outside (project, environment) pairs, status, code, status inside). Where a field
# is omitted the binding fills it in (gate, keys), so only explicit other values are outside.
CHECKED_CASES = {
    "POST /api/v1/gate/decisions": (_gate, OTHER_SCOPES, 403, "KEY_SCOPE_MISMATCH", 201),
    "POST /api/v1/integrations/terraform/run-tasks": (
        _run_task_integration,
        OTHER_SCOPES,
        403,
        "KEY_SCOPE_MISMATCH",
        201,
    ),
    "POST /api/v1/actions": (_action, OTHER_SCOPES, 403, "KEY_SCOPE_MISMATCH", 201),
    "POST /api/v1/gate/cloudevents": (_cloudevent, OTHER_SCOPES, 403, "KEY_SCOPE_MISMATCH", 201),
    "POST /api/v1/gate/terraform/preflight": (
        _preflight,
        OTHER_SCOPES,
        403,
        "KEY_SCOPE_MISMATCH",
        201,
    ),
    "POST /api/v1/api-keys": (_key, OTHER_SCOPES, 403, "BINDING_ESCALATION", 201),
    "POST /api/v1/budgets": (
        _budget,
        [*OTHER_SCOPES, (None, ""), ("payments", None)],
        403,
        "KEY_SCOPE_MISMATCH",
        201,
    ),
    "POST /api/v1/approval-tokens/consume": (
        _consume,
        OTHER_SCOPES,
        403,
        "KEY_SCOPE_MISMATCH",
        401,  # past the binding: the token itself is checked (and is garbage)
    ),
}


def test_every_method_checked_in_its_view_has_a_case():
    checked = {r.id for r in ROUTES if isinstance(_rule(r), CheckedInView)}
    assert checked == {*CHECKED_CASES, *CHECKED_ELSEWHERE}


def _llm_reserve(client, project, environment):
    return client.post(
        "/api/v1/llm/reservations",
        {"model": "gpt-4o", "input_tokens": 10, "project": project, "environment": environment},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


CHECKED_CASES["POST /api/v1/llm/reservations"] = (
    _llm_reserve,
    OTHER_SCOPES,
    403,
    "KEY_SCOPE_MISMATCH",
    201,
)


@pytest.mark.parametrize("name", sorted(CHECKED_CASES))
def test_methods_checked_in_the_view_refuse_the_outside(world, name):
    call, outside, status, code, inside = CHECKED_CASES[name]
    client = world["client"]
    for project, environment in outside:
        assert_problem(call(client, project, environment), status, code)
    assert call(client, "payments", "dev").status_code == inside


# Checked in the view and proven by a test of its own (their refusals are not problem bodies).
CHECKED_ELSEWHERE = {
    "POST /api/v1/policies/simulate": "test_a_bound_keys_simulation_is_confined_to_its_binding",
    "POST /api/v1/gate/k8s/admission": "test_a_bound_admission_key_is_refused_outside_in_the_review",
}


def test_a_bound_admission_key_is_refused_outside_in_the_review(world):
    """The admission webhook answers every refusal inside an AdmissionReview (HTTP 200,
    ``allowed: false``): the binding's refusal is status.code 403 KEY_SCOPE_MISMATCH."""
    from tests.integrations.k8s import manifest, review

    def admit(project, environment):
        pod = manifest("pod.yaml")
        pod["metadata"]["annotations"] = {
            "tollgate.io/project": project,
            "tollgate.io/environment": environment,
        }
        response = world["client"].post(
            "/api/v1/gate/k8s/admission", review("CREATE", pod), format="json"
        )
        assert response.status_code == 200, response.content[:300]
        return response.json()["response"]

    for project, environment in OTHER_SCOPES:
        answer = admit(project, environment)
        assert answer["allowed"] is False and answer["status"]["code"] == 403
        assert answer["auditAnnotations"]["code"] == "KEY_SCOPE_MISMATCH"
    inside = admit("payments", "dev")
    assert inside["allowed"] is True and inside["auditAnnotations"]["decision"].startswith("dec_")


def test_a_bound_worker_leases_only_inside_its_binding(world):
    """``POST /actions/lease`` is confined like a list: only actions inside the binding."""
    rows = world["rows"][Action]
    leased = []
    while True:
        response = world["client"].post("/api/v1/actions/lease", {"worker": "w"}, format="json")
        if response.status_code == 204:
            break
        leased.append(response.json()["id"])
    assert set(leased) == _ids(rows["in"])


def test_a_bound_keys_simulation_is_confined_to_its_binding(
    world, django_capture_on_commit_callbacks
):
    now = db_now()
    with django_capture_on_commit_callbacks(execute=False):
        response = world["client"].post(
            "/api/v1/policies/simulate",
            {"version": 1, "since": (now - timedelta(days=1)).isoformat()},
            format="json",
        )
    assert response.status_code == 202
    assert response.json()["scope"] == {"project": "payments", "environment": "dev"}


def test_the_issue_17_escapes_of_a_bound_key(world, tenant):
    """$PK: commit another project's reservation, raise a tenant-wide budget, delete a
    tenant-wide key, list other projects' decisions."""
    client, rows = world["client"], world["rows"]
    other = rows[Reservation]["out"][0]
    assert_problem(
        client.post(
            f"/api/v1/reservations/{other.pk}/commit", {"actual_cost_usd": "1.00"}, format="json"
        ),
        404,
        "NOT_FOUND",
    )
    tenant_budget = rows[Budget]["out"][0]
    assert_problem(
        client.patch(
            f"/api/v1/budgets/{tenant_budget.pk}", {"limit_usd": "99999999.00"}, format="json"
        ),
        404,
        "NOT_FOUND",
    )
    tenant_key = rows[ApiKey]["out"][0]
    assert_problem(client.delete(f"/api/v1/api-keys/{tenant_key.pk}"), 404, "NOT_FOUND")
    tenant_key.refresh_from_db()
    assert tenant_key.revoked_at is None
    listed = {d["id"] for d in client.get("/api/v1/decisions").json()["results"]}
    assert listed == _ids(rows[Decision]["in"])


# --- routes outside the walks --------------------------------------------------------------------

# Every route of the URLconf that is not under /api/v1, and why an API key (bound or not) does
# not reach it: each answers to its own credential, or shows no tenant data.
OUT_OF_REACH = {
    "": "a redirect to the dashboard",
    "dashboard/": "a session login (Django auth, CSRF); an API key is not a session, so a bound "
    "key never reaches the dashboard; its pages check roles and entitlements themselves "
    "(tests/dashboard)",
    "admin/": "staff sessions of operators; API keys are not accepted",
    "scim/v2/": "per-tenant SCIM bearer tokens of the identity provider, tenant-wide by design "
    "(it provisions every person); API keys are refused (tests/identity)",
    "webhooks/billing/": "payment providers, authenticated by their signature over the body",
    "api/schema/": "the public description of the API (no tenant data)",
    "api/docs/": "Swagger UI over that description (no tenant data)",
    ".well-known/jwks.json": "public keys that verify approval tokens",
    "healthz": "liveness probe (no tenant data)",
    "readyz": "readiness probe (no tenant data)",
    "metrics": "Prometheus metrics (METRICS_TOKEN; no tenant data)",
}


def _reach(route: str) -> str | None:
    if route.startswith("api/v1/"):
        return "walked"
    return next(
        (
            prefix
            for prefix in OUT_OF_REACH
            if route == prefix or (prefix and route.startswith(prefix))
        ),
        None,
    )


def test_every_route_is_walked_or_says_why_not():
    unexplained = sorted(route for route, _ in url_patterns() if _reach(route) is None)
    assert not unexplained, f"add these to the walks or to OUT_OF_REACH: {unexplained}"
    function_views = sorted(
        route
        for route, callback in url_patterns()
        if route.startswith("api/v1/") and getattr(callback, "view_class", None) is None
    )
    assert not function_views, f"the walks see class-based views only: {function_views}"


@pytest.mark.parametrize(
    ("method", "path", "refused"),
    [
        ("GET", "/dashboard/", {302}),  # to the login page
        ("GET", "/dashboard/keys/", {302}),
        ("GET", "/admin/", {302}),
        ("GET", "/scim/v2/Users", {401}),
        ("POST", "/scim/v2/Users", {401}),
        ("POST", "/webhooks/billing/stripe", {400, 503}),  # unsigned: never processed
    ],
)
def test_an_api_key_does_not_open_the_routes_of_other_credentials(world, method, path, refused):
    response = _call(world["client"], method, path, {"userName": "x"})
    assert response.status_code in refused, (path, response.status_code, response.content[:300])


def test_a_scim_token_opens_nothing_but_scim(tenant):
    """The other direction: the identity provider's token is refused by /api/v1."""
    from controlplane.identity.services.tokens import scim_token_issue

    _, token = scim_token_issue(tenant=tenant, name="okta")
    scim = _client(token)
    assert scim.get("/scim/v2/Users").status_code == 200
    assert_problem(scim.get("/api/v1/tenant"), 401)
    assert_problem(scim.get("/api/v1/decisions"), 401)


def test_the_llm_proxy_routes_are_walked_in_the_providers_error_shape():
    """The proxy (``/v1/...``) is served in front of Django, outside this URLconf, and answers
    in the provider's error shape (docs/decisions/0014-llm-proxy-provider-error-shapes.md):
    tests/llm/test_proxy_walks.py walks scope, binding, body depth and the error registry for
    every one of its routes."""
    from enforcement.llm.admission import ROUTES as PROXY_ROUTES
    from tests.llm.test_proxy_walks import BODIES as WALKED

    assert set(PROXY_ROUTES) == set(WALKED)
    assert not any(route.lstrip("/") == p for p in PROXY_ROUTES for route, _ in url_patterns())
