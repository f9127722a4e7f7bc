"""Demo data for ``manage.py seed_demo``: an Anthropic credential validated by the local fake.

Under ``run_demo`` the fake provider is already running and ``BYOK_PROVIDER_BASE_URLS`` points
at it. Run alone, ``seed_demo`` starts a fake just long enough to validate the key; later
probes then find nothing listening and record ``unreachable``, as they would for a real outage.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings

from byok.demo_provider import ANTHROPIC_VALID_KEY, DEMO_VALID_KEYS, FakeProviderServer
from byok.models import CredentialStatus, ProviderCredential
from byok.providers import provider_names
from byok.services import credential_create


@contextmanager
def _provider_reachable():
    if settings.BYOK_PROVIDER_BASE_URLS.get("anthropic"):
        yield
        return
    with FakeProviderServer(valid_keys=set(DEMO_VALID_KEYS), control=True) as fake:
        previous = settings.BYOK_PROVIDER_BASE_URLS
        settings.BYOK_PROVIDER_BASE_URLS = dict.fromkeys(provider_names(), fake.base_url)
        try:
            yield
        finally:
            settings.BYOK_PROVIDER_BASE_URLS = previous


def seed_byok_demo(*, tenant, stdout) -> None:
    """Idempotent: one live Anthropic credential (the walk-through adds the OpenAI one)."""
    live = ProviderCredential.objects.for_tenant(tenant).filter(provider="anthropic")
    if live.exclude(status=CredentialStatus.REVOKED).exists():
        return
    with _provider_reachable():
        credential_create(
            tenant=tenant,
            provider="anthropic",
            api_key=ANTHROPIC_VALID_KEY,
            label="demo",
            actor="demo",
        )
