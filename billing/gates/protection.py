"""The protection gate: per-key, per-tenant and global request rates, one Redis round trip.

Its provider is Redis (``PROTECTION_REDIS_URL``) through the project's limiter
(``controlplane.core.ratelimit``), with a ``PROTECTION_PROVIDER_TIMEOUT_MS`` socket timeout and
no client retries (a retry would double the time a dead Redis costs). Its last known state is a
local memory of refusals: a limit that refused is answered locally for min(Retry-After,
``PROTECTION_CACHE_SECONDS``), so a client hammering after a 429 costs no round trip, and those
refusals still hold while Redis is failing. Otherwise a failure goes to the fail mode.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
import structlog
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from billing.gates.guard import breaker_for
from billing.gates.metrics import PROVIDER_ERRORS
from controlplane.core.ratelimit import Limit, RateLimiter

log = structlog.get_logger(__name__)
PROVIDER = "protection:redis"


@dataclass(frozen=True, slots=True)
class ProtectionVerdict:
    allowed: bool
    scope: str  # key | tenant | global | "" (allowed)
    retry_after: float = 0.0
    source: str = "fresh"  # fresh | cache (local refusal) | fail_open | fail_closed
    cause: str = ""

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


@lru_cache(maxsize=4)
def _limiter(url: str, timeout_ms: int, prefix: str) -> RateLimiter:
    client = redis.Redis.from_url(
        url,
        socket_timeout=timeout_ms / 1000,
        socket_connect_timeout=timeout_ms / 1000,
        retry=Retry(NoBackoff(), 0),
    )
    return RateLimiter(client, key_prefix=prefix)


def limiter() -> RateLimiter:
    return _limiter(
        settings.PROTECTION_REDIS_URL,
        settings.PROTECTION_PROVIDER_TIMEOUT_MS,
        settings.PROTECTION_KEY_PREFIX,
    )


def limits_for(*, tenant_id: str | None, api_key_id: str | None) -> list[Limit]:
    limits = []
    if api_key_id:
        limits.append(
            Limit(f"key:{api_key_id}", settings.PROTECTION_KEY_RATE, settings.PROTECTION_KEY_BURST)
        )
    if tenant_id:
        limits.append(
            Limit(
                f"tenant:{tenant_id}",
                settings.PROTECTION_TENANT_RATE,
                settings.PROTECTION_TENANT_BURST,
            )
        )
    limits.append(
        Limit("global", settings.PROTECTION_GLOBAL_RATE, settings.PROTECTION_GLOBAL_BURST)
    )
    return limits


_refusals: dict[str, float] = {}  # limit key -> monotonic time until which it refuses
_refusals_lock = threading.Lock()


def _scope(key: str) -> str:
    return key.split(":", 1)[0]


def _remembered(limits: list[Limit], now: float) -> ProtectionVerdict | None:
    worst = None
    for limit in limits:
        until = _refusals.get(limit.key)
        if until is not None and until > now and (worst is None or until > worst[1]):
            worst = (limit.key, until)
    if worst is None:
        return None
    return ProtectionVerdict(False, _scope(worst[0]), worst[1] - now, source="cache")


def _remember(key: str, seconds: float, now: float) -> None:
    with _refusals_lock:
        _refusals[key] = now + seconds
        if len(_refusals) > 10_000:  # bounded: drop what has run out
            for stale in [k for k, until in _refusals.items() if until <= now]:
                del _refusals[stale]


def forget_refusals() -> None:
    with _refusals_lock:
        _refusals.clear()


def check(*, tenant_id: str | None, api_key_id: str | None) -> ProtectionVerdict:
    """Charge one request to every applicable limit, or say which refused and for how long."""
    limits = limits_for(tenant_id=tenant_id, api_key_id=api_key_id)
    now = time.monotonic()
    remembered = _remembered(limits, now)
    if remembered is not None:
        return remembered
    breaker = breaker_for(PROVIDER)
    if not breaker.allow():
        return _failed("circuit_open")
    try:
        decision = limiter().check(limits)
    except redis.RedisError as exc:
        PROVIDER_ERRORS.labels(provider=PROVIDER).inc()
        breaker.record_failure()
        cause = "timeout" if isinstance(exc, redis.TimeoutError) else "error"
        log.warning(
            "gate_provider_failed", provider=PROVIDER, cause=cause, error=type(exc).__name__
        )
        return _failed(cause)
    breaker.record_success()
    if decision.allowed:
        return ProtectionVerdict(True, "")
    _remember(
        decision.limited_by, min(decision.retry_after, settings.PROTECTION_CACHE_SECONDS), now
    )
    return ProtectionVerdict(False, _scope(decision.limited_by), decision.retry_after)


def _failed(cause: str) -> ProtectionVerdict:
    if settings.PROTECTION_FAIL_MODE == "open":
        return ProtectionVerdict(True, "", source="fail_open", cause=cause)
    return ProtectionVerdict(False, "", retry_after=5.0, source="fail_closed", cause=cause)
