"""The Redis client BYOK uses for quota counters and provider breakers (short, explicit timeouts)."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=8)
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30
    )


def byok_redis() -> redis.Redis:
    """Client for ``settings.BYOK_REDIS_URL``; raises redis.ConnectionError when unset."""
    url = settings.BYOK_REDIS_URL
    if not url:
        raise redis.ConnectionError("BYOK_REDIS_URL/REDIS_URL is not configured")
    return _client(url, float(settings.BYOK_REDIS_TIMEOUT_SECONDS))
