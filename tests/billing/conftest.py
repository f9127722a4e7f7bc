"""Billing fixtures: gate state reset per test, fake providers, a Redis fault proxy."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import pytest
from rest_framework.test import APIClient

from billing.gates import cache, checks, guard, protection
from tests import factories
from tests.byok.conftest import _provider_server, provider_server  # noqa: F401 - shared fixtures
from tests.fakes.gate_state_server import GateStateServer
from tests.fakes.tcp_proxy import FaultProxy


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def reset_gates() -> None:
    cache.clear()
    guard.reset_breakers()
    protection.forget_refusals()
    checks._guarded.cache_clear()
    protection._limiter.cache_clear()


@pytest.fixture(autouse=True)
def gates(settings, monkeypatch):
    """Fresh caches and breakers, a private rate-limit key space, a controllable breaker clock."""
    settings.PROTECTION_KEY_PREFIX = f"test:{uuid.uuid4().hex}:gate:"
    clock = FakeClock()
    monkeypatch.setattr(guard, "clock", clock)
    reset_gates()
    yield clock
    reset_gates()


def key_client(tenant, **kwargs) -> APIClient:
    _, plaintext = factories.make_api_key(tenant, **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture(scope="session")
def _gate_state_server():
    with GateStateServer() as server:
        yield server


@pytest.fixture
def gate_state(_gate_state_server):
    server = _gate_state_server
    server.mode, server.delay = "ok", 0.0
    server.lifecycle.clear(), server.billing.clear(), server.usage.clear(), server.requests.clear()
    yield server
    server.mode = "ok"


@pytest.fixture
def redis_proxy(settings):
    """Protection's Redis reached through a fault proxy (the real Redis behind it)."""
    target = urlparse(settings.REDIS_URL)
    with FaultProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        settings.PROTECTION_REDIS_URL = f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}"
        protection._limiter.cache_clear()
        yield proxy
    protection._limiter.cache_clear()
