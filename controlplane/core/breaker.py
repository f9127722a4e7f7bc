"""Circuit breakers: one state machine, two stores.

``CircuitBreaker`` keeps its state in Redis, shared by every worker and machine (BYOK probes:
one provider outage costs one probe per half-open window across the fleet).
``LocalCircuitBreaker`` keeps the same state machine in the process (the request gates: the
breaker sits on the hot path, where a Redis round trip per check would cost more than the
check, and it guards the protection gate's Redis itself, which a Redis-held breaker cannot).
``tests/core/test_breakers.py`` runs both through the same scenarios.

States::

    closed    -> calls flow; consecutive failures are counted
    open      -> calls are refused until ``reset_timeout_seconds`` have passed
    half_open -> exactly one trial call (across all processes) is let through;
                 its success closes the breaker, its failure re-opens it for another timeout

Time comes only from Redis key TTLs (``PX``), never from the local clock, so machines with
skewed clocks agree, and timeouts may be sub-second. Every transition is one Lua script, so it
is atomic. Keys share a ``{name}`` hash tag, so they land in one Redis Cluster slot.

What counts as a failure is the caller's decision. For BYOK probes and provider calls, record a
failure for ``provider_error``, ``timeout`` and ``unreachable`` (see
``byok.providers.base.PROVIDER_FAULT_STATUSES``); ``invalid`` and ``rate_limited`` are about the
key, not the provider, and must not trip the breaker. Redis errors propagate: callers fail
closed (503) rather than guess.

Keys (``P`` = ``key_prefix``): ``P{name}:failures`` consecutive failure count;
``P{name}:tripped`` present while not closed; ``P{name}:open`` present (with PX expiry) while
open; ``P{name}:trial`` the half-open trial token (SET NX PX).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

BreakerState = Literal["closed", "open", "half_open"]

_STATES: dict[int, BreakerState] = {0: "closed", 1: "open", 2: "half_open"}

# KEYS: failures, tripped, open, trial
_STATE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
return 2
"""

# ARGV: trial_ms. Returns 1 when the caller may proceed.
_ALLOW_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('SET', KEYS[4], '1', 'NX', 'PX', tonumber(ARGV[1])) then return 1 end
return 0
"""

# ARGV: threshold, reset_ms. Returns the resulting state code.
_FAILURE_LUA = """
local n = redis.call('INCR', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
  redis.call('SET', KEYS[3], '1', 'PX', tonumber(ARGV[2]))
  redis.call('DEL', KEYS[4])
  return 1
end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1')
  redis.call('SET', KEYS[3], '1', 'PX', tonumber(ARGV[2]))
  redis.call('DEL', KEYS[4])
  return 1
end
return 0
"""


def _to_ms(seconds: float, what: str) -> int:
    if not isinstance(seconds, int | float) or math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a positive number of seconds")
    return max(1, math.ceil(seconds * 1000))


class _Thresholds:
    """Name, threshold and timeouts, validated the same way for both stores."""

    def __init__(
        self,
        *,
        name: str,
        failure_threshold: int,
        reset_timeout_seconds: float,
        trial_timeout_seconds: float | None,
    ) -> None:
        if not name:
            raise ValueError("breaker name must be non-empty")
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int):
            raise ValueError("failure_threshold must be an int")
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_ms = _to_ms(reset_timeout_seconds, "reset_timeout_seconds")
        # A trial whose caller died without reporting must not block recovery forever.
        self.trial_timeout_ms = (
            self.reset_timeout_ms
            if trial_timeout_seconds is None
            else _to_ms(trial_timeout_seconds, "trial_timeout_seconds")
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} threshold={self.failure_threshold}>"


class CircuitBreaker(_Thresholds):
    """Redis-backed breaker for one provider; see the module docstring for the state machine."""

    def __init__(
        self,
        redis_client: Any,
        *,
        name: str,
        failure_threshold: int = 5,
        reset_timeout_seconds: float = 60,
        key_prefix: str = "tollgate:breaker:",
        trial_timeout_seconds: float | None = None,
    ) -> None:
        super().__init__(
            name=name,
            failure_threshold=failure_threshold,
            reset_timeout_seconds=reset_timeout_seconds,
            trial_timeout_seconds=trial_timeout_seconds,
        )
        base = f"{key_prefix}{{{name}}}"
        self.keys = (f"{base}:failures", f"{base}:tripped", f"{base}:open", f"{base}:trial")
        self._redis = redis_client
        self._state = redis_client.register_script(_STATE_LUA)
        self._allow = redis_client.register_script(_ALLOW_LUA)
        self._failure = redis_client.register_script(_FAILURE_LUA)

    def allow(self) -> bool:
        """True when a call may proceed: closed, or this caller won the single half-open trial."""
        return bool(self._allow(keys=self.keys, args=[self.trial_timeout_ms]))

    def record_success(self) -> None:
        """Close the breaker and zero the consecutive failure count."""
        self._redis.delete(*self.keys)

    def record_failure(self) -> BreakerState:
        """Count one consecutive failure; open at the threshold or when a half-open trial fails."""
        code = self._failure(keys=self.keys, args=[self.failure_threshold, self.reset_timeout_ms])
        return _STATES[int(code)]

    def state(self) -> BreakerState:
        """Current state as seen by Redis: ``closed``, ``open`` or ``half_open``."""
        return _STATES[int(self._state(keys=self.keys))]

    def failure_count(self) -> int:
        """Consecutive failures recorded since the last success."""
        raw = self._redis.get(self.keys[0])
        return int(raw) if raw is not None else 0

    def reset(self) -> None:
        """Force the breaker closed (operator action); same effect as a success."""
        self.record_success()


class LocalCircuitBreaker(_Thresholds):
    """The same state machine held in this process (thread-safe); time from a monotonic clock.

    ``on_open`` is called (outside the lock) each time the breaker moves into ``open``, so
    callers can count openings rather than refusals.
    """

    def __init__(
        self,
        *,
        name: str,
        failure_threshold: int = 5,
        reset_timeout_seconds: float = 60,
        trial_timeout_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_open: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            name=name,
            failure_threshold=failure_threshold,
            reset_timeout_seconds=reset_timeout_seconds,
            trial_timeout_seconds=trial_timeout_seconds,
        )
        self._clock = clock
        self._on_open = on_open
        self._lock = threading.Lock()
        self._failures = 0
        self._tripped = False
        self._open_until = 0.0  # clock value; the breaker is open while clock < this
        self._trial_until = 0.0  # a half-open trial is out until this clock value

    def _now_ms(self) -> float:
        return self._clock() * 1000

    def _state_locked(self, now: float) -> BreakerState:
        if not self._tripped:
            return "closed"
        return "open" if now < self._open_until else "half_open"

    def allow(self) -> bool:
        """True when a call may proceed: closed, or this caller won the single half-open trial."""
        with self._lock:
            now = self._now_ms()
            state = self._state_locked(now)
            if state == "closed":
                return True
            if state == "open" or now < self._trial_until:
                return False
            self._trial_until = now + self.trial_timeout_ms
            return True

    def record_success(self) -> None:
        """Close the breaker and zero the consecutive failure count."""
        with self._lock:
            self._failures = 0
            self._tripped = False
            self._open_until = self._trial_until = 0.0

    def record_failure(self) -> BreakerState:
        """Count one consecutive failure; open at the threshold or when a half-open trial fails."""
        with self._lock:
            now = self._now_ms()
            self._failures += 1
            if self._tripped and now < self._open_until:
                return "open"
            if not self._tripped and self._failures < self.failure_threshold:
                return "closed"
            self._tripped = True
            self._open_until = now + self.reset_timeout_ms
            self._trial_until = 0.0
        if self._on_open is not None:
            self._on_open(self.name)
        return "open"

    def state(self) -> BreakerState:
        """Current state: ``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state_locked(self._now_ms())

    def failure_count(self) -> int:
        """Consecutive failures recorded since the last success."""
        with self._lock:
            return self._failures

    def reset(self) -> None:
        """Force the breaker closed (operator action); same effect as a success."""
        self.record_success()
