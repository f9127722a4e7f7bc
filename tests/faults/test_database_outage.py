"""PostgreSQL down, full, shut down or slow: 503 DATABASE_UNAVAILABLE with Retry-After on every
endpoint (never a 500); the gate answers by its fail mode where the failure meets a decision;
Redis down: the gate keeps deciding and /readyz names the failing check. (Issue 11, item 5.)"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.faults.conftest import APP_THREADS, APP_WORKERS

pytestmark = pytest.mark.xdist_group("faults")


def _operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    out = []
    for path, item in schema["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                out.append((method.upper(), path.replace("{id}", "x").replace("{version}", "1")))
    return sorted(out)


def _gate(stack, environment="prod", amount="1.00", timeout=30):
    return httpx.post(
        stack.base + "/api/v1/gate/decisions",
        json={"project": "payments", "environment": environment, "estimated_cost_usd": amount},
        headers={**stack.auth, "Idempotency-Key": uuid.uuid4().hex},
        timeout=timeout,
    )


def _assert_database_unavailable(response):
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "DATABASE_UNAVAILABLE", body
    # One mapping everywhere (views, plain Django views, the request gates' authentication):
    # the cause is always named.
    assert body["cause"] in ("unavailable", "timeout"), body
    assert int(response.headers["Retry-After"]) > 0
    assert body["remediation"]
    return body


def _recovers(stack, seconds=30):
    """The app serves again without a restart."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = _gate(stack)
            if last.status_code == 201:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"no recovery: {last!r}")


def test_connection_refused_is_503_on_every_endpoint(stack):
    stack.pg.stop()
    try:
        operations = _operations()

        def call(operation):
            method, path = operation
            return httpx.request(
                method,
                stack.base + path,
                headers=stack.auth,
                json={} if method in ("POST", "PUT", "PATCH") else None,
                timeout=30,
            )

        with ThreadPoolExecutor(APP_WORKERS * APP_THREADS) as pool:
            responses = dict(zip(operations, pool.map(call, operations), strict=True))
        statuses = {op: response.status_code for op, response in responses.items()}
        assert 500 not in statuses.values(), statuses
        for (_, path), response in responses.items():
            if path.startswith("/api/v1/"):
                _assert_database_unavailable(response)
        ready = httpx.get(stack.base + "/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["ok"] is False
        assert "database" in ready.json()["detail"]
        assert httpx.get(stack.base + "/healthz", timeout=30).status_code == 200
        assert httpx.get(stack.base + "/admin/", timeout=30).status_code != 500
    finally:
        stack.pg.start()
    _recovers(stack)


def _fill_connections(stack) -> list[psycopg.Connection]:
    """Take every free connection slot of the private server."""
    held = []
    while True:
        try:
            held.append(psycopg.connect(stack.pg.url(), connect_timeout=5, autocommit=True))
        except psycopg.OperationalError as exc:
            assert "too many clients" in str(exc), exc
            return held


def test_too_many_clients_is_503_not_500_and_recovers(stack):
    held = _fill_connections(stack)
    try:
        # Drop the app's pooled connections: every request must now open a new one, and the
        # server refuses with "sorry, too many clients already".
        held[0].execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = 'tollgate' AND pid <> pg_backend_pid() AND application_name = ''"
        )
        held.pop(0).close()
        held += _fill_connections(stack)
        for _ in range(3):
            _assert_database_unavailable(_gate(stack))
            _assert_database_unavailable(
                httpx.get(stack.base + "/api/v1/budgets", headers=stack.auth, timeout=30)
            )
    finally:
        for conn in held:
            conn.close()
    _recovers(stack)


def test_admin_shutdown_of_idle_connections_is_invisible_or_503(stack):
    with psycopg.connect(stack.pg.url(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = 'tollgate' AND pid <> pg_backend_pid()"
        )
    for _ in range(10):
        response = _gate(stack)
        assert response.status_code in (201, 503), response.text[:300]
        if response.status_code == 503:
            _assert_database_unavailable(response)
    _recovers(stack)


def test_statement_timeout_is_503_database_unavailable(stack):
    with psycopg.connect(stack.pg.url()) as conn:
        conn.execute("LOCK TABLE enforcement_budget IN ACCESS EXCLUSIVE MODE")
        response = httpx.get(stack.base + "/api/v1/budgets", headers=stack.auth, timeout=30)
        body = _assert_database_unavailable(response)
        assert body["cause"] == "timeout"
        conn.rollback()
    _recovers(stack)


@pytest.mark.parametrize(
    ("environment", "expected"), [("prod", "closed"), ("dev", "open")], ids=["prod", "dev"]
)
def test_gate_answers_by_fail_mode_when_its_decision_times_out(stack, environment, expected):
    with psycopg.connect(stack.pg.url()) as conn:
        conn.execute("LOCK TABLE enforcement_budgetperiod IN ACCESS EXCLUSIVE MODE")
        response = _gate(stack, environment)
        conn.rollback()
    if expected == "closed":
        assert response.status_code == 503, response.text[:300]
        body = response.json()
        assert body["code"] == "GATE_UNAVAILABLE" and body["fail_cause"] == "deadline"
        assert response.headers["Retry-After"]
    else:
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        assert body["outcome"] == "ALLOW" and body["fail_open"] is True
        assert body["fail_cause"] == "deadline" and body["reservation"] is None


def test_gate_answers_by_fail_mode_when_the_server_kills_its_connection(stack):
    """Admin shutdown of the backend mid-decision (57P01): nonprod fails open, nothing written."""
    answer = {}
    with psycopg.connect(stack.pg.url()) as conn:
        conn.execute("LOCK TABLE enforcement_budgetperiod IN ACCESS EXCLUSIVE MODE")
        before = conn.execute("SELECT count(*) FROM enforcement_decision").fetchone()[0]
        worker = threading.Thread(target=lambda: answer.update(r=_gate(stack, "dev")))
        worker.start()
        with psycopg.connect(stack.pg.url(), autocommit=True) as killer:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                killed = killer.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = 'tollgate' AND wait_event_type = 'Lock'"
                ).fetchone()[0]
                if killed:
                    break
                time.sleep(0.02)
            assert killed, "the gate never waited on the lock"
        worker.join(30)
        conn.rollback()
        after = conn.execute("SELECT count(*) FROM enforcement_decision").fetchone()[0]
    response = answer["r"]
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["fail_open"] is True and body["fail_cause"] == "database"
    assert after == before
    _recovers(stack)


def test_redis_down_gate_keeps_deciding_and_readyz_names_redis(stack):
    stack.redis.stop()
    try:
        for _ in range(3):
            assert _gate(stack).status_code == 201
        ready = httpx.get(stack.base + "/readyz", timeout=30)
        assert ready.status_code == 503
        body = ready.json()
        assert body["checks"]["redis"]["ok"] is False and body["checks"]["database"]["ok"]
        assert "redis" in body["detail"]
    finally:
        stack.redis.start()
    assert httpx.get(stack.base + "/readyz", timeout=30).status_code == 200


def test_no_500_was_logged(stack):
    log = stack.server_log()
    assert '"status":500' not in log, [line for line in log.splitlines() if '"status":500' in line]
