"""One state machine, two stores: the Redis breaker (shared) and the local one (per process)
go through the same scenarios. Time moves without sleeping: the local breaker reads an injected
clock; for the Redis one the expiring keys are removed, which is what their expiry does."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from controlplane.core.breaker import CircuitBreaker, LocalCircuitBreaker

pytestmark = pytest.mark.redis
RESET = 30.0
TRIAL = 5.0


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "redis"])
def harness(request):
    """(breaker, advance_past_reset, advance_past_trial, openings)"""
    openings: list[str] = []
    if request.param == "local":
        clock = _Clock()
        breaker = LocalCircuitBreaker(
            name="p",
            failure_threshold=3,
            reset_timeout_seconds=RESET,
            trial_timeout_seconds=TRIAL,
            clock=clock,
            on_open=openings.append,
        )

        def past_reset():
            clock.now += RESET + 0.001

        def past_trial():
            clock.now += TRIAL + 0.001

        yield breaker, past_reset, past_trial, openings
        return
    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = f"test:{uuid.uuid4().hex}:breaker:"
    breaker = CircuitBreaker(
        client,
        name="p",
        failure_threshold=3,
        reset_timeout_seconds=RESET,
        trial_timeout_seconds=TRIAL,
        key_prefix=prefix,
    )
    _failures, _tripped, open_key, trial_key = breaker.keys
    yield breaker, (lambda: client.delete(open_key)), (lambda: client.delete(trial_key)), None
    client.delete(*breaker.keys)
    client.close()


def test_failures_below_the_threshold_keep_it_closed_and_a_success_resets(harness):
    breaker, *_ = harness
    assert breaker.record_failure() == "closed"
    assert breaker.record_failure() == "closed"
    breaker.record_success()
    assert breaker.failure_count() == 0
    assert breaker.record_failure() == "closed"
    assert breaker.state() == "closed" and breaker.allow()


def test_threshold_opens_and_refuses_until_the_reset_time(harness):
    breaker, past_reset, _, openings = harness
    for _ in range(2):
        breaker.record_failure()
    assert breaker.record_failure() == "open"
    assert breaker.state() == "open" and not breaker.allow()
    if openings is not None:
        assert openings == ["p"]
    past_reset()
    assert breaker.state() == "half_open"


def test_half_open_lets_exactly_one_trial_through_and_its_success_closes(harness):
    breaker, past_reset, _, _ = harness
    for _ in range(3):
        breaker.record_failure()
    past_reset()
    assert breaker.allow() is True
    assert breaker.allow() is False  # the one trial is out
    breaker.record_success()
    assert breaker.state() == "closed" and breaker.allow() and breaker.failure_count() == 0


def test_a_failed_trial_reopens_for_another_full_reset(harness):
    breaker, past_reset, _, openings = harness
    for _ in range(3):
        breaker.record_failure()
    past_reset()
    assert breaker.allow()
    assert breaker.record_failure() == "open"
    assert breaker.state() == "open" and not breaker.allow()
    if openings is not None:
        assert openings == ["p", "p"]


def test_a_trial_whose_caller_vanished_expires_and_another_may_try(harness):
    breaker, past_reset, past_trial, _ = harness
    for _ in range(3):
        breaker.record_failure()
    past_reset()
    assert breaker.allow() and not breaker.allow()
    past_trial()
    assert breaker.allow()


def test_local_breaker_validates_like_the_shared_one():
    with pytest.raises(ValueError):
        LocalCircuitBreaker(name="", failure_threshold=1)
    with pytest.raises(ValueError):
        LocalCircuitBreaker(name="x", failure_threshold=0)
    with pytest.raises(ValueError):
        LocalCircuitBreaker(name="x", reset_timeout_seconds=0)
