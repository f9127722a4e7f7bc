"""BYOK quotas with a real Redis that stops: 503 BYOK_QUOTA_UNAVAILABLE (fail closed), and
counting resumes when it is back (issue 11, item 5)."""

from __future__ import annotations

import pytest

from byok import quota
from controlplane.core.errors import TollgateError
from tests.servers.postgres import private_redis

pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("faults")]


def test_quota_fails_closed_while_redis_is_stopped_and_recovers(tenant, settings):
    with private_redis() as redis:
        settings.BYOK_REDIS_URL = redis.url
        settings.BYOK_REDIS_TIMEOUT_SECONDS = 0.5
        assert quota.byok_quota_consume(tenant, limit=10) == 1
        redis.stop()
        for _ in range(2):
            with pytest.raises(TollgateError) as exc:
                quota.byok_quota_consume(tenant, limit=10)
            assert exc.value.status_code == 503
            assert exc.value.code == "BYOK_QUOTA_UNAVAILABLE"
            assert exc.value.headers["Retry-After"]
        redis.start()  # a fresh, empty server on the same port: the client reconnects
        assert quota.byok_quota_consume(tenant, limit=10) == 1
