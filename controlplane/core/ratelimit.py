"""Rate limits in Redis: GCRA over any number of limits, checked and charged in one round trip.

The one limiter of the project. The request gates use it for per-key, per-tenant and global
request rates; anything that needs "at most N of X per window" (LLM tokens per user or key)
builds ``Limit``s and calls ``RateLimiter.check`` with a ``cost``.

GCRA (generic cell rate algorithm): each limit keeps one value, the theoretical arrival time
(TAT) of the next unit. A request of ``cost`` units is allowed when, after adding
``cost * interval`` to the TAT, the TAT is at most ``burst * interval`` ahead of now. It is a
token bucket of ``burst`` units refilled at ``rate`` units per second, stored as one number.

All limits of one call are checked together in a Lua script: either every limit is charged,
or none is (a request refused by the global limit does not use up the caller's own quota).
Time is Redis's clock (``TIME``), so application servers with skewed clocks agree. Every key
carries the hash tag ``{rl}`` so the keys of one call share a Redis Cluster slot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# KEYS: one TAT key per limit. ARGV: cost, then (interval_us, burst_us) per limit.
# Returns {allowed (1|0), retry_after_us, limiting index (1-based, 0 = none), remaining units}.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local new_tats = {}
local retry = 0
local limiting = 0
local remaining = -1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - burst
  if allow_at > now then
    if allow_at - now > retry then
      retry = allow_at - now
      limiting = i
    end
  else
    local left = math.floor((burst - (new_tat - now)) / interval)
    if remaining < 0 or left < remaining then remaining = left end
  end
  new_tats[i] = new_tat
end
if limiting > 0 then
  return {0, math.ceil(retry), limiting, 0}
end
for i = 1, #KEYS do
  local ttl = math.ceil((new_tats[i] - now) / 1000) + 1
  redis.call('SET', KEYS[i], string.format('%.0f', new_tats[i]), 'PX', ttl)
end
return {1, 0, 0, remaining}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``burst`` units at once, refilled at ``rate`` units per second, under ``key``."""

    key: str
    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a limit needs a key")
        if not isinstance(self.rate, int | float) or not math.isfinite(self.rate):
            raise ValueError("rate must be a finite number")
        if self.rate <= 0 or self.rate > 1_000_000:
            raise ValueError("rate must be in (0, 1e6] units per second")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError("burst must be an int >= 1")

    @classmethod
    def per_window(cls, key: str, amount: int, window_seconds: float) -> Limit:
        """``amount`` units per ``window_seconds``, all of which may be used at once."""
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        return cls(key=key, rate=amount / window_seconds, burst=amount)

    @property
    def interval_us(self) -> float:
        return 1_000_000 / self.rate


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float  # seconds until the same call would be allowed (0 when allowed)
    limited_by: str | None  # key of the limit that refused (the one needing the longest wait)
    remaining: int  # units still available right now under the tightest limit (0 when refused)

    @property
    def retry_after_header(self) -> str:
        """Whole seconds for a ``Retry-After`` header (at least 1 when refused)."""
        return str(max(1, math.ceil(self.retry_after))) if not self.allowed else "0"


class RateLimiter:
    """Checks and charges a set of ``Limit``s atomically; Redis errors propagate to the caller."""

    def __init__(self, redis_client: Any, *, key_prefix: str = "tollgate:rl:") -> None:
        self._redis = redis_client
        self._prefix = key_prefix
        self._script = redis_client.register_script(_GCRA_LUA)

    def redis_key(self, limit: Limit) -> str:
        return f"{self._prefix}{{rl}}:{limit.key}"

    def check(self, limits: Sequence[Limit], *, cost: int = 1) -> RateDecision:
        """Charge ``cost`` units to every limit, or to none and say how long to wait."""
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
            raise ValueError("cost must be an int >= 1")
        if not limits:
            return RateDecision(allowed=True, retry_after=0.0, limited_by=None, remaining=0)
        too_big = [limit.key for limit in limits if cost > limit.burst]
        if too_big:
            # Never allowable, whatever the wait: say so instead of a Retry-After that lies.
            raise ValueError(f"cost {cost} exceeds the burst of {', '.join(too_big)}")
        args: list[Any] = [cost]
        for limit in limits:
            args += [repr(limit.interval_us), repr(limit.interval_us * limit.burst)]
        allowed, retry_us, index, remaining = self._script(
            keys=[self.redis_key(limit) for limit in limits], args=args
        )
        if int(allowed):
            return RateDecision(
                allowed=True, retry_after=0.0, limited_by=None, remaining=int(remaining)
            )
        return RateDecision(
            allowed=False,
            retry_after=int(retry_us) / 1_000_000,
            limited_by=limits[int(index) - 1].key,
            remaining=0,
        )

    def reset(self, limits: Sequence[Limit]) -> None:
        """Forget the state of these limits (operator action, tests)."""
        if limits:
            self._redis.delete(*(self.redis_key(limit) for limit in limits))
