"""BYOK fixtures: entitled tenants, a fake provider server wired into settings, helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing.services import tenant_plan_set
from tests import factories
from tests.fakes.provider_server import (
    ANTHROPIC_VALID_KEY,
    DEFAULT_VALID_KEY,
    FakeProviderServer,
)

VALID_KEYS = {"openai": DEFAULT_VALID_KEY, "anthropic": ANTHROPIC_VALID_KEY}
PROVIDERS = ("openai", "anthropic")
PROBE_TIMEOUT = 0.4


def entitle(tenant) -> None:
    tenant_plan_set(tenant=tenant, plan="pro")


@pytest.fixture
def tenant(db):
    tenant = factories.make_tenant("acme")
    entitle(tenant)
    return tenant


@pytest.fixture
def other_tenant(db):
    tenant = factories.make_tenant("globex")
    entitle(tenant)
    return tenant


@pytest.fixture(scope="session")
def _provider_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def provider_server(_provider_server, settings) -> Iterator[FakeProviderServer]:
    """The fake provider, reset, with every adapter's base URL pointing at it."""
    _provider_server.reset()
    settings.BYOK_PROVIDER_BASE_URLS = {name: _provider_server.base_url for name in PROVIDERS}
    settings.BYOK_PROBE_TIMEOUT_SECONDS = PROBE_TIMEOUT
    yield _provider_server
    _provider_server.reset()


@pytest.fixture(params=PROVIDERS)
def provider(request) -> str:
    return request.param


@pytest.fixture
def byok_redis(settings):
    """A Redis client; breaker keys get a per-test prefix, so parallel workers never share
    breaker state (quota keys are per tenant id, already unique). Nothing is flushed."""
    import uuid

    import redis

    run = uuid.uuid4().hex
    settings.BYOK_BREAKER_KEY_PREFIX = f"test:{run}:breaker:"
    settings.BYOK_LIVENESS_LOCK_KEY = f"test:{run}:liveness:lock"
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    for key in client.scan_iter(match=f"test:{run}:*"):
        client.delete(key)
    client.close()
