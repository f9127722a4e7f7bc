"""Fixtures of the LLM gateway tests: a loaded price catalog, a tenant entitled to the gateway
with a budget, the fake upstream and the proxy served by uvicorn (both on port 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.pricing import lookup
from billing.services.prices import price_catalog_import
from byok.models import TenantByokSettings
from enforcement.llm import upstream as upstream_cache
from tests import factories
from tests.fakes.llm_upstream import FakeLlmUpstream, ServedApp

PRICES = Path(__file__).resolve().parents[1] / "fixtures" / "llm" / "litellm_prices_subset.json"
PLATFORM_KEYS = {"openai": "sk-platform-openai-0001", "anthropic": "sk-ant-platform-0001"}


@pytest.fixture
def price_catalog(db):
    lookup.clear()
    result = price_catalog_import(text=PRICES.read_bytes(), source=str(PRICES))
    yield result.catalog
    lookup.clear()


@pytest.fixture
def fake_upstream():
    app = FakeLlmUpstream()
    with ServedApp(app) as served:
        app.url = served.url
        yield app
        if app.release is not None and served.loop is not None:
            served.loop.call_soon_threadsafe(app.release.set)


@pytest.fixture
def gateway_settings(settings, fake_upstream):
    settings.BYOK_PROVIDER_BASE_URLS = {"openai": fake_upstream.url, "anthropic": fake_upstream.url}
    settings.LLM_PLATFORM_KEYS = dict(PLATFORM_KEYS)
    settings.LLM_UPSTREAM_CACHE_SECONDS = 0
    upstream_cache.clear()
    return settings


@pytest.fixture
def llm_tenant(db, price_catalog):
    """A Pro tenant (the gateway entitlement) allowing the platform keys, with a project
    ``payments`` and a 10 USD monthly budget on it."""
    tenant = factories.make_tenant("llmco", plan="pro")
    project = factories.make_project(tenant, "payments")
    TenantByokSettings.objects.create(tenant=tenant, platform_providers=["openai", "anthropic"])
    tenant.budget = factories.make_budget(tenant, "10.00", project=project)
    key, plaintext = factories.make_api_key(tenant, project=project, environment="dev")
    tenant.key, tenant.plaintext = key, plaintext
    return tenant


@pytest.fixture
def proxy(transactional_db, gateway_settings):
    from controlplane.asgi import application

    with ServedApp(application) as served:
        yield served
