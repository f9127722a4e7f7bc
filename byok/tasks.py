"""Periodic BYOK work."""

from __future__ import annotations

import secrets

from celery import shared_task
from django.conf import settings

from byok.liveness import credentials_probe
from byok.redis_client import byok_redis

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@shared_task(name="byok.credentials_probe_task")
def credentials_probe_task() -> dict[str, int]:
    """Re-probe every stored credential (bounded concurrency, per-provider breakers).

    One run at a time across all workers: a Redis lock (expiring after one interval, so a
    crashed worker cannot block the next tick) keeps overlapping beat ticks from double-probing.
    """
    client = byok_redis()
    lock_key = settings.BYOK_LIVENESS_LOCK_KEY
    token = secrets.token_hex(16)
    ttl_ms = int(max(60.0, float(settings.BYOK_LIVENESS_INTERVAL_SECONDS)) * 1000)
    if not client.set(lock_key, token, nx=True, px=ttl_ms):
        return {"skipped_locked": 1}
    try:
        return credentials_probe()
    finally:
        client.eval(_RELEASE_LUA, 1, lock_key, token)
