"""Daily BYOK quota: atomic at the boundary under concurrency, fail closed without Redis."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from byok import quota
from byok.services import byok_settings_set
from controlplane.core.errors import TollgateError

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def test_limit_th_request_passes_next_is_429_with_50_concurrent_callers(tenant, byok_redis):
    limit = 37
    barrier = threading.Barrier(50)

    def call(_):
        barrier.wait(timeout=10)
        try:
            return quota.byok_quota_consume(tenant.pk, limit=limit)
        except TollgateError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(call, range(50)))
    passed = sorted(o for o in outcomes if isinstance(o, int))
    refused = [o for o in outcomes if isinstance(o, TollgateError)]
    assert passed == list(range(1, limit + 1))  # every count up to the limit, exactly once
    assert len(refused) == 50 - limit
    assert {(e.status_code, e.code) for e in refused} == {(429, "BYOK_QUOTA_EXCEEDED")}
    assert all(int(e.headers["Retry-After"]) > 0 for e in refused)
    key = quota.quota_key(tenant.pk)
    assert int(byok_redis.get(key)) == 50
    assert 0 < byok_redis.ttl(key) <= quota.KEY_TTL_SECONDS
    byok_redis.delete(key)


def test_boundary_sequential_and_tenant_settings_limit(tenant, other_tenant, byok_redis):
    byok_settings_set(tenant=tenant, required_providers=[], daily_request_limit=3)
    assert [quota.byok_quota_consume(tenant) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(TollgateError) as exc:
        quota.byok_quota_consume(tenant)
    assert exc.value.status_code == 429
    assert exc.value.extra["limit"] == 3
    # Other tenants have their own counter (and the default limit).
    assert quota.byok_quota_consume(other_tenant) == 1


def test_default_limit_from_settings(tenant, byok_redis, settings):
    settings.BYOK_DAILY_QUOTA_DEFAULT = 1
    assert quota.byok_quota_consume(tenant) == 1
    with pytest.raises(TollgateError):
        quota.byok_quota_consume(tenant)


def test_redis_unreachable_is_503_fail_closed(tenant, settings):
    settings.BYOK_REDIS_URL = "redis://127.0.0.1:1/0"
    settings.BYOK_REDIS_TIMEOUT_SECONDS = 0.5
    with pytest.raises(TollgateError) as exc:
        quota.byok_quota_consume(tenant)
    assert exc.value.status_code == 503
    assert exc.value.code == "BYOK_QUOTA_UNAVAILABLE"
    assert exc.value.headers["Retry-After"]
