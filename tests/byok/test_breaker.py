"""Redis-backed circuit breaker: shared state, atomic transitions, single half-open trial."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from controlplane.core.breaker import CircuitBreaker

REDIS_URL = os.environ.get("BREAKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
RESET = 0.15  # seconds; sub-second because the breaker uses Redis PX expiries
PAST_RESET = RESET + 0.1


def _connect() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=2)


@pytest.fixture(scope="module")
def redis_available() -> None:
    try:
        _connect().ping()
    except redis.RedisError as exc:
        reason = f"Redis not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def prefix(redis_available: None) -> Iterator[str]:
    value = f"test:breaker:{uuid.uuid4().hex}:"
    yield value
    client = _connect()
    keys = list(client.scan_iter(match=f"{value}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def client(redis_available: None) -> Iterator[redis.Redis]:
    conn = _connect()
    yield conn
    conn.close()


def make(client: redis.Redis, prefix: str, **kw) -> CircuitBreaker:
    kw.setdefault("failure_threshold", 3)
    kw.setdefault("reset_timeout_seconds", RESET)
    return CircuitBreaker(client, name="openai", key_prefix=prefix, **kw)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    assert breaker.state() == "open"


def test_starts_closed_and_allows(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix)
    assert breaker.state() == "closed"
    assert breaker.allow()
    assert breaker.failure_count() == 0


def test_opens_exactly_at_threshold(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix)
    assert breaker.record_failure() == "closed"
    assert breaker.record_failure() == "closed"
    assert breaker.allow()
    assert breaker.record_failure() == "open"
    assert breaker.state() == "open"
    assert not breaker.allow()
    assert breaker.failure_count() == 3


def test_success_resets_consecutive_count(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    assert breaker.failure_count() == 0
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state() == "closed"


def test_state_is_shared_between_clients(client: redis.Redis, prefix: str) -> None:
    other = _connect()
    try:
        a, b = make(client, prefix), make(other, prefix)
        a.record_failure()
        b.record_failure()
        a.record_failure()
        assert b.state() == "open"
        assert not b.allow()
    finally:
        other.close()


def test_breakers_are_isolated_by_name(client: redis.Redis, prefix: str) -> None:
    trip(make(client, prefix))
    other = CircuitBreaker(client, name="anthropic", key_prefix=prefix, reset_timeout_seconds=RESET)
    assert other.state() == "closed"
    assert other.allow()


def test_failures_while_open_do_not_extend_the_window(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix)
    trip(breaker)
    time.sleep(RESET * 0.6)
    breaker.record_failure()  # a straggler that was already in flight
    time.sleep(RESET * 0.6)
    assert breaker.state() == "half_open"


def test_half_open_lets_one_trial_then_closes_on_success(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix)
    trip(breaker)
    time.sleep(PAST_RESET)
    assert breaker.state() == "half_open"
    assert breaker.allow()
    assert not breaker.allow()
    assert breaker.state() == "half_open"
    breaker.record_success()
    assert breaker.state() == "closed"
    assert breaker.failure_count() == 0
    assert breaker.allow()
    assert breaker.allow()


def test_failed_trial_reopens_for_another_timeout(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix)
    trip(breaker)
    time.sleep(PAST_RESET)
    assert breaker.allow()
    assert breaker.record_failure() == "open"
    assert breaker.state() == "open"
    assert not breaker.allow()
    time.sleep(PAST_RESET)
    assert breaker.state() == "half_open"
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state() == "closed"


def test_abandoned_trial_expires(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix, trial_timeout_seconds=0.1)
    trip(breaker)
    time.sleep(PAST_RESET)
    assert breaker.allow()
    assert not breaker.allow()
    time.sleep(0.2)  # the trial's caller died without reporting
    assert breaker.allow()


@pytest.mark.parametrize("contenders", [2, 8])
def test_racing_clients_get_exactly_one_trial(
    client: redis.Redis, prefix: str, contenders: int
) -> None:
    trip(make(client, prefix))
    time.sleep(PAST_RESET)
    connections = [_connect() for _ in range(contenders)]
    breakers = [make(conn, prefix) for conn in connections]
    for conn in connections:
        conn.ping()  # connect up front so the barrier releases into the allow() calls only
    barrier = threading.Barrier(contenders)
    results: list[bool] = []
    lock = threading.Lock()

    def contend(breaker: CircuitBreaker) -> None:
        barrier.wait(timeout=5)
        allowed = breaker.allow()
        with lock:
            results.append(allowed)

    threads = [threading.Thread(target=contend, args=(b,)) for b in breakers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    for conn in connections:
        conn.close()
    assert len(results) == contenders
    assert results.count(True) == 1


def test_threshold_one_and_validation(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix, failure_threshold=1)
    assert breaker.record_failure() == "open"
    with pytest.raises(ValueError):
        make(client, prefix, failure_threshold=0)
    with pytest.raises(ValueError):
        make(client, prefix, reset_timeout_seconds=0)
    with pytest.raises(ValueError):
        CircuitBreaker(client, name="")


def test_keys_share_a_cluster_hash_tag(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix)
    assert all("{openai}" in key for key in breaker.keys)
    assert all(key.startswith(prefix) for key in breaker.keys)


def test_open_key_carries_a_redis_ttl(client: redis.Redis, prefix: str) -> None:
    breaker = make(client, prefix, reset_timeout_seconds=30)
    trip(breaker)
    ttl_ms = client.pttl(breaker.keys[2])
    assert 0 < ttl_ms <= 30_000
    breaker.reset()
    assert breaker.state() == "closed"
    assert not any(client.exists(key) for key in breaker.keys)
