"""Per-provider circuit breaker whose state lives in Redis, shared by every worker and machine.

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


class CircuitBreaker:
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
        base = f"{key_prefix}{{{name}}}"
        self.keys = (f"{base}:failures", f"{base}:tripped", f"{base}:open", f"{base}:trial")
        self._redis = redis_client
        self._state = redis_client.register_script(_STATE_LUA)
        self._allow = redis_client.register_script(_ALLOW_LUA)
        self._failure = redis_client.register_script(_FAILURE_LUA)

    def __repr__(self) -> str:
        return f"<CircuitBreaker name={self.name!r} threshold={self.failure_threshold}>"

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
