"""Every request is bounded (issue 11, item 2): the real gunicorn config, a test-only slow view.

A request past REQUEST_TIMEOUT_SECONDS is ended (503 REQUEST_TIMEOUT when it can still answer),
its worker is replaced, and the event is logged and counted. Other requests keep being served.
"""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time

import httpx
import pytest

from controlplane.core.watchdog import RequestWatchdog
from tests.servers.gunicorn import gunicorn_server

ENV = {
    "DJANGO_SETTINGS_MODULE": "tests.hardening.slow_settings",
    "WEB_CONCURRENCY": "1",
    "GUNICORN_THREADS": "4",
    "REQUEST_TIMEOUT_SECONDS": "2",
    "REQUEST_TIMEOUT_GRACE_SECONDS": "2",
}


def _pid(base: str) -> int:
    return httpx.get(base + "/__test__/pid", timeout=10).json()["pid"]


def _wait_for_new_worker(base: str, old: int, seconds: float = 60) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid = _pid(base)
            if pid != old:
                return pid
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the worker was not replaced")


def _timeouts(base: str) -> dict[str, float]:
    text = httpx.get(base + "/metrics", timeout=10).text
    found = re.findall(r'request_timeouts_total\{action="(\w+)"\} ([0-9.e+]+)', text)
    return {action: float(value) for action, value in found}


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


@pytest.fixture(scope="module")
def server():
    with gunicorn_server(ENV) as running:
        yield running


def test_a_spinning_request_is_ended_with_503_and_its_worker_replaced(server):
    base, _, log_path = server
    before = _pid(base)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(httpx.get, base + "/__test__/spin", timeout=60)
        # While the request spins, the other threads of the same worker still answer.
        assert httpx.get(base + "/healthz", timeout=10).status_code == 200
        response = slow.result()
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "REQUEST_TIMEOUT"
    assert response.headers["Retry-After"]
    after = _wait_for_new_worker(base, before)
    assert after != before
    assert _timeouts(base).get("interrupted", 0) >= 1
    log = _read(log_path)
    assert "request_timeout" in log and "GET /__test__/spin" in log


def test_a_request_blocked_in_c_code_gets_its_worker_killed_and_replaced(server):
    base, _, log_path = server
    before = _pid(base)
    try:
        response = httpx.get(base + "/__test__/block", timeout=60)
        status = response.status_code  # gunicorn may answer for the dead worker
    except httpx.HTTPError:
        status = None  # or the connection is just closed
    assert status in (None, 500, 502, 503)
    _wait_for_new_worker(base, before)
    assert _timeouts(base).get("killed", 0) >= 1
    assert "request_timeout_kill" in _read(log_path)


class _Worker:
    alive = True


def test_watchdog_passes_are_exact():
    """The decision rule without a server: nothing before the limit; once past it, one signal;
    past the grace, the exit."""
    exits, raised = [], []
    watchdog = RequestWatchdog(
        _Worker(), timeout=10, grace=5, exit=exits.append, raise_in=raised.append
    )
    watchdog.begin("GET /x")
    started = time.monotonic()
    watchdog.check(now=started + 9)
    assert watchdog.worker.alive and not watchdog._expired
    watchdog.check(now=started + 11)
    assert not watchdog.worker.alive and raised == [threading.get_ident()]
    watchdog.check(now=started + 15)
    assert not exits
    watchdog.check(now=started + 17)
    assert exits == [70]
    watchdog.end()
    assert not watchdog._inflight and not watchdog._expired
