"""Daily BYOK request quota per tenant: one atomic Redis round trip, fail closed.

The counter key is per tenant and UTC day; a Lua script INCRs it and sets its expiry on the
first increment, so the count and its TTL are one atomic step and no key lives forever.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings

from byok.errors import ByokErrorCode
from byok.metrics import QUOTA_REJECTIONS
from byok.models import TenantByokSettings
from byok.redis_client import byok_redis
from controlplane.core.errors import TollgateError

KEY_PREFIX = "tollgate:byok:quota:"
# Two days: the counter outlives its day even with clock skew between app and Redis.
KEY_TTL_SECONDS = 2 * 86400

_CONSUME_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return n
"""


def daily_limit(tenant) -> int:
    """The tenant's daily BYOK request limit (its settings, else ``BYOK_DAILY_QUOTA_DEFAULT``)."""
    row = TenantByokSettings.objects.filter(tenant_id=getattr(tenant, "pk", tenant)).first()
    if row is not None and row.daily_request_limit is not None:
        return int(row.daily_request_limit)
    return int(settings.BYOK_DAILY_QUOTA_DEFAULT)


def quota_key(tenant_id: str, now: datetime | None = None) -> str:
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"{KEY_PREFIX}{{{tenant_id}}}:{day}"


def _seconds_to_midnight(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()))


def quota_used_today(tenant) -> int:
    """Requests counted today (UTC) for the tenant; raises redis.RedisError when unreachable."""
    raw = byok_redis().get(quota_key(getattr(tenant, "pk", tenant)))
    return int(raw) if raw is not None else 0


def byok_quota_consume(tenant, *, limit: int | None = None) -> int:
    """Count one BYOK request; returns the day's count or raises 429 / 503 (never allows blind)."""
    tenant_id = getattr(tenant, "pk", tenant)
    limit = daily_limit(tenant_id) if limit is None else limit
    now = datetime.now(UTC)
    try:
        client = byok_redis()
        count = int(client.eval(_CONSUME_LUA, 1, quota_key(tenant_id, now), KEY_TTL_SECONDS))
    except redis.RedisError as exc:
        QUOTA_REJECTIONS.labels(reason="unavailable").inc()
        raise TollgateError(
            ByokErrorCode.BYOK_QUOTA_UNAVAILABLE,
            "The BYOK quota store is unreachable, so the request was refused (fail closed).",
            remediation="Retry shortly; operators: check Redis (BYOK_REDIS_URL / REDIS_URL).",
            status=503,
            headers={"Retry-After": "5"},
            extra={"cause": type(exc).__name__},
        ) from None
    if count > limit:
        QUOTA_REJECTIONS.labels(reason="exceeded").inc()
        retry = _seconds_to_midnight(now)
        raise TollgateError(
            ByokErrorCode.BYOK_QUOTA_EXCEEDED,
            f"The daily BYOK request quota of {limit} is used up.",
            remediation="Wait for the quota to reset at 00:00 UTC or ask for a higher limit.",
            status=429,
            headers={"Retry-After": str(retry)},
            extra={"limit": limit, "reset_in_seconds": retry},
        )
    return count
