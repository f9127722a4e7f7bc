"""The LLM wrapper tests use the LLM gateway's fixtures (price catalog, fake upstream, a
tenant entitled to the gateway)."""

from tests.llm.conftest import (  # noqa: F401
    fake_upstream,
    gateway_settings,
    llm_tenant,
    price_catalog,
)
