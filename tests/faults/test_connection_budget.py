"""Connections are budgeted (issue 11, item 6): 256 concurrent clients against the production
gunicorn config and settings: no 500, no connection error, and the app never holds more than
WEB_CONCURRENCY x DB_POOL_MAX_SIZE connections (docs/deploy.md has the arithmetic)."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import psycopg
import pytest

from tests.faults.conftest import APP_THREADS, APP_WORKERS

pytestmark = pytest.mark.xdist_group("faults")
CLIENTS = 256
CALLS_PER_CLIENT = 2


def _app_connections(conn) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'tollgate' "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).fetchone()[0]


def test_256_concurrent_clients_no_500_no_connection_errors(stack):
    start = threading.Barrier(CLIENTS + 1)
    statuses: list[int | str] = []
    lock = threading.Lock()
    peak = 0
    done = threading.Event()

    def client(index: int) -> None:
        results = []
        with httpx.Client(base_url=stack.base, headers=stack.auth, timeout=120) as http:
            start.wait(60)
            for call in range(CALLS_PER_CLIENT):
                try:
                    if call % 2 == 0:
                        response = http.post(
                            "/api/v1/gate/decisions",
                            json={
                                "project": "payments",
                                "environment": "prod",
                                "estimated_cost_usd": "0.01",
                            },
                            headers={"Idempotency-Key": uuid.uuid4().hex},
                        )
                    else:
                        response = http.get("/api/v1/budgets")
                    results.append(response.status_code)
                except httpx.HTTPError as exc:
                    results.append(type(exc).__name__)
        with lock:
            statuses.extend(results)

    def sample() -> None:
        nonlocal peak
        with psycopg.connect(stack.pg.url(), autocommit=True) as conn:
            while not done.is_set():
                peak = max(peak, _app_connections(conn))
                time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    start.wait(60)
    for thread in threads:
        thread.join(300)
    elapsed = time.monotonic() - started
    done.set()
    sampler.join(30)

    assert len(statuses) == CLIENTS * CALLS_PER_CLIENT
    bad = [s for s in statuses if s not in (200, 201)]
    assert not bad, {s: bad.count(s) for s in set(bad)}
    ceiling = APP_WORKERS * APP_THREADS  # DB_POOL_MAX_SIZE defaults to GUNICORN_THREADS
    assert 0 < peak <= ceiling, (peak, ceiling)
    print(
        f"\n{CLIENTS} clients x {CALLS_PER_CLIENT} calls in {elapsed:.1f} s; peak {peak} "
        f"app connections (ceiling {ceiling}, max_connections 16)"
    )
