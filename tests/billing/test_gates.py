"""The request gates with their default providers (this database, Redis): what each blocks,
in which order, what is exempt, and what the steady state costs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.gates import routes
from billing.models import Subscription
from billing.services.plans import plan_upsert, tenant_plan_set
from billing.services.subscriptions import subscription_link, subscription_transition
from controlplane.tenancy.services import tenant_set_lifecycle
from tests import factories
from tests.api_contracts import assert_problem
from tests.billing.conftest import key_client

pytestmark = [pytest.mark.django_db, pytest.mark.redis]
PROJECTS = "/api/v1/projects"
GATE_CODES = ("TENANT_SUSPENDED", "PAYMENT_REQUIRED", "RATE_LIMITED")


def _subscribed(tenant, state: str = "active") -> Subscription:
    sub = subscription_link(
        tenant=tenant, provider="stripe", customer_id=f"cus_{tenant.slug}", actor="test"
    )
    path = {
        "active": [],
        "past_due": ["past_due"],
        "suspended": ["past_due", "suspended"],
        "canceled": ["canceled"],
    }[state]
    for to in path:
        subscription_transition(subscription_id=sub.id, to=to, reason="test", actor="test")
    sub.refresh_from_db()
    return sub


def _decide(client, project="payments"):
    return client.post(
        "/api/v1/gate/decisions",
        {"project": project, "environment": "prod", "estimated_cost_usd": "1.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


@pytest.mark.parametrize("state", ["suspended", "canceled"])
def test_lifecycle_gate_refuses_a_suspended_or_canceled_subscription(tenant, state):
    client = key_client(tenant)
    _subscribed(tenant, state)
    body = assert_problem(client.get(PROJECTS), 403, "TENANT_SUSPENDED")
    assert body["state"] == state and "subscription" in body["reason"]
    assert "remediation" in body


def test_operator_suspension_is_refused_too(tenant):
    client = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    tenant_set_lifecycle(tenant=tenant, lifecycle="suspended")
    assert_problem(client.get(PROJECTS), 403, "TENANT_SUSPENDED")


def test_past_due_passes_within_grace_and_is_402_after(tenant):
    client = key_client(tenant)
    sub = _subscribed(tenant, "past_due")
    assert client.get(PROJECTS).status_code == 200  # within grace
    Subscription.objects.filter(pk=sub.id).update(
        grace_until=datetime.now(UTC) - timedelta(seconds=1)
    )
    from billing.gates.cache import invalidate_tenant

    invalidate_tenant(tenant.id)
    body = assert_problem(client.get(PROJECTS), 402, "PAYMENT_REQUIRED")
    assert body["reason"] == "unpaid" and "invoice" in body["remediation"]
    # A blocked tenant can still read what is wrong (billing-exempt route).
    tenant_view = client.get("/api/v1/tenant")
    assert tenant_view.status_code == 200
    assert tenant_view.json()["subscription"]["state"] == "past_due"


def test_lifecycle_runs_before_billing(tenant):
    client = key_client(tenant)
    sub = _subscribed(tenant, "suspended")
    Subscription.objects.filter(pk=sub.id).update(grace_until=datetime.now(UTC) - timedelta(days=1))
    assert_problem(client.get(PROJECTS), 403, "TENANT_SUSPENDED")


def test_decisions_per_month_limit_is_402_on_gate_calls_only(tenant, settings):
    settings.BILLING_USAGE_CACHE_SECONDS = 0  # count on every metered call
    plan_upsert(code="tiny", name="Tiny", features=[], limits={"decisions_per_month": 2})
    tenant_plan_set(tenant=tenant, plan="tiny")
    factories.make_project(tenant, "payments")
    client = key_client(tenant)
    assert _decide(client).status_code == 201
    assert _decide(client).status_code == 201
    body = assert_problem(_decide(client), 402, "PAYMENT_REQUIRED")
    assert body["reason"] == "plan_limit" and body["limit"] == "decisions_per_month"
    assert body["allowed"] == 2 and body["upgrade_to"] == "free"
    assert "next calendar month" in body["remediation"]
    assert client.get(PROJECTS).status_code == 200  # not metered


def test_rate_limit_per_key_is_429_with_retry_after(tenant, settings):
    settings.PROTECTION_KEY_RATE, settings.PROTECTION_KEY_BURST = 0.01, 2
    client = key_client(tenant)
    other = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    assert client.get(PROJECTS).status_code == 200
    response = client.get(PROJECTS)
    body = assert_problem(response, 429, "RATE_LIMITED")
    assert body["scope"] == "key" and int(response["Retry-After"]) >= 1
    assert other.get(PROJECTS).status_code == 200  # another key of the tenant is not limited


def test_rate_limit_per_tenant_spans_its_keys(tenant, other_tenant, settings):
    settings.PROTECTION_TENANT_RATE, settings.PROTECTION_TENANT_BURST = 0.01, 2
    first, second = key_client(tenant), key_client(tenant)
    assert first.get(PROJECTS).status_code == 200
    assert second.get(PROJECTS).status_code == 200
    assert assert_problem(first.get(PROJECTS), 429, "RATE_LIMITED")["scope"] == "tenant"
    assert key_client(other_tenant).get(PROJECTS).status_code == 200


def test_global_limit_applies_to_anonymous_callers_too(db, settings, client):
    settings.PROTECTION_GLOBAL_RATE, settings.PROTECTION_GLOBAL_BURST = 0.01, 1
    assert client.get(PROJECTS).status_code == 401  # passed the gate, the view refused
    body = assert_problem(client.get(PROJECTS), 429, "RATE_LIMITED")
    assert body["scope"] == "global"


def test_a_refusal_is_remembered_locally_for_a_moment(tenant, settings, redis_proxy):
    settings.PROTECTION_KEY_RATE, settings.PROTECTION_KEY_BURST = 0.01, 1
    client = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    assert client.get(PROJECTS).status_code == 429
    writes = redis_proxy.client_writes
    assert client.get(PROJECTS).status_code == 429
    assert redis_proxy.client_writes == writes  # answered without Redis


def test_protection_is_one_redis_round_trip(tenant, redis_proxy):
    client = key_client(tenant)
    client.get(PROJECTS)  # loads the script
    writes = redis_proxy.client_writes
    assert client.get(PROJECTS).status_code == 200
    assert redis_proxy.client_writes == writes + 1


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/metrics",
        "/scim/v2/Users",
        "/webhooks/billing/stripe",
        "/admin/login/",
        "/api/schema/",
        "/.well-known/jwks.json",
    ],
)
def test_exempt_paths_are_not_gated(tenant, settings, path, client):
    settings.PROTECTION_GLOBAL_RATE, settings.PROTECTION_GLOBAL_BURST = 0.01, 1
    _subscribed(tenant, "suspended")
    _, plaintext = factories.make_api_key(tenant)
    for _ in range(3):  # over the global limit, with a suspended tenant's key
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        code = (
            response.json().get("code")
            if "problem+json" in response.get("Content-Type", "")
            else None
        )
        assert code not in GATE_CODES, (path, response.status_code, code)
    assert routes.is_exempt(path)


def test_a_bad_key_is_refused_even_with_every_gate_failing_open(db, settings, client):
    settings.LIFECYCLE_FAIL_MODE = settings.PROTECTION_FAIL_MODE = "open"
    settings.PROTECTION_REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    response = client.get(PROJECTS, HTTP_AUTHORIZATION="Bearer tg_nope_nope")
    assert_problem(response, 401)


def test_steady_state_adds_no_database_query(tenant, settings):
    client = key_client(tenant)
    client.get(PROJECTS)  # warm: gate caches filled, key touched
    settings.REQUEST_GATES_ENABLED = False
    with CaptureQueriesContext(connection) as without_gates:
        assert client.get(PROJECTS).status_code == 200
    settings.REQUEST_GATES_ENABLED = True
    with CaptureQueriesContext(connection) as with_gates:
        assert client.get(PROJECTS).status_code == 200
    assert len(with_gates) == len(without_gates), [q["sql"] for q in with_gates]


def test_a_plan_change_in_this_process_is_seen_at_once(tenant, settings):
    settings.BILLING_USAGE_CACHE_SECONDS = 300
    factories.make_project(tenant, "payments")
    client = key_client(tenant)
    assert _decide(client).status_code == 201
    plan_upsert(code="zero", name="Zero", features=[], limits={"decisions_per_month": 0})
    tenant_plan_set(tenant=tenant, plan="zero")
    assert_problem(_decide(client), 402, "PAYMENT_REQUIRED")
