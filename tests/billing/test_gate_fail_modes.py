"""The fail-mode matrix of the request gates, against providers that really are slow, failing,
garbled or flapping: a gate state service (HTTP) for lifecycle and billing, a TCP fault proxy in
front of Redis for protection, and a locked table for the database provider.

| provider                     | last known answer | fail mode       | result                      |
|------------------------------|-------------------|-----------------|-----------------------------|
| healthy                      | -                 | -               | its answer (pass or block)  |
| slow / failing / garbled     | younger than max  | any             | the last answer, flagged    |
| slow / failing / garbled     | none              | closed          | 503 <GATE>_UNAVAILABLE      |
| slow / failing / garbled     | none              | open            | pass, flagged, counted      |
| N consecutive failures       | -                 | -               | breaker opens, no calls     |
| breaker open, reset passed   | -                 | -               | one trial; success closes   |
| billing, any failure         | none              | (closed only)   | 503, unless BILLING_BYPASS  |
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY

from billing.gates.config import check_settings
from tests.api_contracts import assert_problem
from tests.billing.conftest import key_client

pytestmark = [pytest.mark.django_db, pytest.mark.redis]
PROJECTS = "/api/v1/projects"
DEGRADED = "Tollgate-Degraded"


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


ACTIVE = {"state": "active"}
BILLING_OK = {
    "plan": {"code": "growth", "name": "Growth", "rank": 2, "limits": {}},
    "subscription": {"state": "active", "grace_until": None},
}


@pytest.fixture
def http_lifecycle(settings, gate_state, tenant):
    settings.LIFECYCLE_PROVIDER = gate_state.url
    settings.LIFECYCLE_PROVIDER_TIMEOUT_MS = 100
    settings.LIFECYCLE_CACHE_SECONDS = 0  # every request asks; the cache is the last known
    gate_state.lifecycle[tenant.id] = dict(ACTIVE)
    return gate_state


@pytest.fixture
def http_billing(settings, gate_state, tenant):
    settings.BILLING_PROVIDER = gate_state.url
    settings.BILLING_PROVIDER_TIMEOUT_MS = 100
    settings.BILLING_PLAN_CACHE_SECONDS = 0
    gate_state.billing[tenant.id] = dict(BILLING_OK)
    return gate_state


# --- lifecycle ---------------------------------------------------------------------------------


def test_healthy_provider_answers(tenant, http_lifecycle):
    client = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    http_lifecycle.lifecycle[tenant.id] = {"state": "suspended", "reason": "billing hold"}
    body = assert_problem(client.get(PROJECTS), 403, "TENANT_SUSPENDED")
    assert body["state"] == "suspended"
    assert len(http_lifecycle.requests) == 2


@pytest.mark.parametrize("mode", ["slow", "error", "garbage"])
def test_failing_provider_without_last_known_fails_closed(tenant, settings, http_lifecycle, mode):
    settings.LIFECYCLE_FAIL_MODE = "closed"
    http_lifecycle.mode, http_lifecycle.delay = mode, 0.4
    before = metric("provider_errors_total", provider="lifecycle:http")
    response = key_client(tenant).get(PROJECTS)
    body = assert_problem(response, 503, "LIFECYCLE_UNAVAILABLE")
    assert body["cause"] == {"slow": "timeout", "error": "error", "garbage": "invalid"}[mode]
    assert response["Retry-After"] == "5"
    assert metric("provider_errors_total", provider="lifecycle:http") == before + 1


@pytest.mark.parametrize("mode", ["slow", "error"])
def test_failing_provider_without_last_known_fails_open_when_configured(
    tenant, settings, http_lifecycle, mode
):
    settings.LIFECYCLE_FAIL_MODE = "open"
    http_lifecycle.mode, http_lifecycle.delay = mode, 0.4
    before = metric("request_gate_fail_open_total", gate="lifecycle")
    response = key_client(tenant).get(PROJECTS)
    assert response.status_code == 200
    assert response[DEGRADED] == "lifecycle=fail_open"
    assert metric("request_gate_fail_open_total", gate="lifecycle") == before + 1


def test_failing_provider_uses_the_last_known_answer_even_a_block(tenant, settings, http_lifecycle):
    settings.LIFECYCLE_FAIL_MODE = "open"  # the last known answer wins over the fail mode
    client = key_client(tenant)
    http_lifecycle.lifecycle[tenant.id] = {"state": "suspended", "reason": "hold"}
    assert_problem(client.get(PROJECTS), 403, "TENANT_SUSPENDED")
    http_lifecycle.mode = "error"
    response = client.get(PROJECTS)
    assert_problem(response, 403, "TENANT_SUSPENDED")
    http_lifecycle.mode = "ok"
    http_lifecycle.lifecycle[tenant.id] = dict(ACTIVE)
    assert client.get(PROJECTS).status_code == 200
    http_lifecycle.mode = "slow"
    http_lifecycle.delay = 0.4
    response = client.get(PROJECTS)
    assert response.status_code == 200 and response[DEGRADED] == "lifecycle=last_known"


def test_last_known_answer_expires(tenant, settings, http_lifecycle):
    settings.LIFECYCLE_FAIL_MODE = "closed"
    client = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    settings.GATE_LAST_KNOWN_MAX_SECONDS = 0
    http_lifecycle.mode = "error"
    assert_problem(client.get(PROJECTS), 503, "LIFECYCLE_UNAVAILABLE")


def test_consecutive_failures_open_the_breaker_and_stop_the_calls(
    tenant, settings, http_lifecycle, gates
):
    settings.LIFECYCLE_FAIL_MODE = "closed"
    settings.GATE_BREAKER_FAILURE_THRESHOLD = 3
    settings.GATE_BREAKER_RESET_SECONDS = 30
    client = key_client(tenant)
    http_lifecycle.mode = "error"
    opened = metric("provider_circuit_open_total", provider="lifecycle:http")
    for _ in range(3):
        assert_problem(client.get(PROJECTS), 503, "LIFECYCLE_UNAVAILABLE")
    assert metric("provider_circuit_open_total", provider="lifecycle:http") == opened + 1
    calls = len(http_lifecycle.requests)
    body = assert_problem(client.get(PROJECTS), 503, "LIFECYCLE_UNAVAILABLE")
    assert body["cause"] == "circuit_open"
    assert len(http_lifecycle.requests) == calls  # not asked while open
    # After the reset time, one trial goes through; its success closes the breaker.
    http_lifecycle.mode = "ok"
    gates.advance(31)
    assert client.get(PROJECTS).status_code == 200
    assert len(http_lifecycle.requests) == calls + 1
    assert client.get(PROJECTS).status_code == 200


def test_a_failed_trial_keeps_the_breaker_open(tenant, settings, http_lifecycle, gates):
    settings.LIFECYCLE_FAIL_MODE = "closed"
    settings.GATE_BREAKER_FAILURE_THRESHOLD = 1
    client = key_client(tenant)
    http_lifecycle.mode = "error"
    assert_problem(client.get(PROJECTS), 503)
    gates.advance(settings.GATE_BREAKER_RESET_SECONDS + 1)
    assert assert_problem(client.get(PROJECTS), 503)["cause"] == "error"  # the trial
    assert assert_problem(client.get(PROJECTS), 503)["cause"] == "circuit_open"


def test_a_flapping_provider_never_opens_the_breaker_and_keeps_the_cache_fresh(
    tenant, settings, http_lifecycle
):
    settings.LIFECYCLE_FAIL_MODE = "closed"
    settings.GATE_BREAKER_FAILURE_THRESHOLD = 2
    client = key_client(tenant)
    http_lifecycle.mode = "flap"  # ok, error, ok, error, ...
    statuses = []
    for _ in range(6):
        response = client.get(PROJECTS)
        statuses.append((response.status_code, response.get(DEGRADED)))
    # Every failure is covered by the answer of the success just before it.
    assert statuses == [(200, None), (200, "lifecycle=last_known")] * 3
    assert len(http_lifecycle.requests) == 6  # the breaker never opened


def test_database_provider_times_out_on_a_locked_table(tenant, settings, transactional_db):
    """The default provider, really slow: another session holds the subscription table."""
    from django.db import connection

    settings.LIFECYCLE_PROVIDER_TIMEOUT_MS = 100
    settings.LIFECYCLE_FAIL_MODE = "closed"
    client = key_client(tenant)
    params = connection.get_connection_params()
    blocker = psycopg.connect(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")}
    )
    try:
        blocker.execute("SET lock_timeout = '5s'")
        blocker.execute("LOCK TABLE billing_subscription IN ACCESS EXCLUSIVE MODE")
        body = assert_problem(client.get(PROJECTS), 503, "LIFECYCLE_UNAVAILABLE")
        assert body["cause"] == "timeout"
    finally:
        blocker.rollback()
        blocker.close()
    assert client.get(PROJECTS).status_code == 200


# --- billing -----------------------------------------------------------------------------------


def test_billing_provider_answers_plan_and_standing(tenant, http_billing):
    client = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    http_billing.billing[tenant.id] = {
        **BILLING_OK,
        "subscription": {"state": "past_due", "grace_until": past},
    }
    assert_problem(client.get(PROJECTS), 402, "PAYMENT_REQUIRED")


@pytest.mark.parametrize("mode", ["slow", "error", "garbage"])
def test_billing_never_fails_open_without_a_bypass(tenant, settings, http_billing, mode):
    http_billing.mode, http_billing.delay = mode, 0.4
    before = metric("request_gate_fail_closed_total", gate="billing")
    assert_problem(key_client(tenant).get(PROJECTS), 503, "BILLING_UNAVAILABLE")
    assert metric("request_gate_fail_closed_total", gate="billing") == before + 1


def test_billing_uses_its_last_known_answer(tenant, http_billing):
    client = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    http_billing.mode = "error"
    response = client.get(PROJECTS)
    assert response.status_code == 200 and response[DEGRADED] == "billing=last_known"


def test_billing_bypass_lets_requests_through_logged_counted_and_time_limited(
    tenant, settings, http_billing, caplog
):
    settings.BILLING_BYPASS_UNTIL = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    settings.BILLING_BYPASS_REASON = "INC-42 billing database failover"
    check_settings()
    http_billing.mode = "error"
    before = metric("request_gate_fail_open_total", gate="billing")
    response = key_client(tenant).get(PROJECTS)
    assert response.status_code == 200 and response[DEGRADED] == "billing=fail_open"
    assert metric("request_gate_fail_open_total", gate="billing") == before + 1
    assert metric("billing_bypass_active") == 1
    assert "billing_bypass_used" in caplog.text and "INC-42" in caplog.text
    # Once the time is up, money fails closed again.
    settings.BILLING_BYPASS_UNTIL = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    assert_problem(key_client(tenant).get(PROJECTS), 503, "BILLING_UNAVAILABLE")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"BILLING_FAIL_MODE": "open"}, "money never fails open"),
        ({"LIFECYCLE_FAIL_MODE": "maybe"}, "LIFECYCLE_FAIL_MODE"),
        ({"BILLING_BYPASS_UNTIL": "+48h", "BILLING_BYPASS_REASON": "x"}, "time-limited"),
        ({"BILLING_BYPASS_UNTIL": "+1h", "BILLING_BYPASS_REASON": ""}, "BILLING_BYPASS_REASON"),
        ({"BILLING_BYPASS_UNTIL": "tomorrow", "BILLING_BYPASS_REASON": "x"}, "ISO 8601"),
    ],
)
def test_unsafe_gate_settings_refuse_to_start(settings, changes, message):
    for name, value in changes.items():
        if isinstance(value, str) and value.startswith("+"):
            value = (datetime.now(UTC) + timedelta(hours=int(value[1:-1]))).isoformat()
        setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        check_settings()


# --- protection --------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["delay", "refuse", "blackhole"])
def test_protection_fails_open_by_default_flagged(tenant, redis_proxy, fault):
    client = key_client(tenant)
    redis_proxy.set_mode(fault, delay=0.3)
    before = metric("protection_decisions_total", result="fail_open", scope="")
    response = client.get(PROJECTS)
    assert response.status_code == 200 and response[DEGRADED] == "protection=fail_open"
    assert metric("protection_decisions_total", result="fail_open", scope="") == before + 1


@pytest.mark.parametrize("fault", ["delay", "refuse"])
def test_protection_fails_closed_when_configured(tenant, settings, redis_proxy, fault):
    settings.PROTECTION_FAIL_MODE = "closed"
    redis_proxy.set_mode(fault, delay=0.3)
    response = key_client(tenant).get(PROJECTS)
    assert_problem(response, 503, "PROTECTION_UNAVAILABLE")
    assert response["Retry-After"] == "5"


def test_protection_keeps_refusing_what_it_refused_while_redis_is_down(
    tenant, settings, redis_proxy
):
    settings.PROTECTION_KEY_RATE, settings.PROTECTION_KEY_BURST = 0.01, 1
    client = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    assert client.get(PROJECTS).status_code == 429
    redis_proxy.set_mode("refuse")
    assert_problem(client.get(PROJECTS), 429, "RATE_LIMITED")  # last known: refused


def test_protection_breaker_spares_a_dead_redis(tenant, settings, redis_proxy, gates):
    settings.GATE_BREAKER_FAILURE_THRESHOLD = 2
    client = key_client(tenant)
    assert client.get(PROJECTS).status_code == 200
    redis_proxy.set_mode("refuse")
    client.get(PROJECTS)
    client.get(PROJECTS)  # second failure opens the breaker
    connections = redis_proxy.connections
    for _ in range(3):
        response = client.get(PROJECTS)
        assert response.status_code == 200 and response[DEGRADED] == "protection=fail_open"
    assert redis_proxy.connections == connections  # Redis not even dialled while open
    redis_proxy.set_mode("pass")
    gates.advance(settings.GATE_BREAKER_RESET_SECONDS + 1)
    response = client.get(PROJECTS)
    assert response.status_code == 200 and DEGRADED not in response
