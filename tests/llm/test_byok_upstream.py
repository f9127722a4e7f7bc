"""Upstream credentials of proxied calls: the tenant's BYOK key through ``resolve_credential``,
never a silent switch to the platform key; a credential's own base URL behind the egress
allowlist (no SSRF)."""

from __future__ import annotations

import openai
import pytest

from byok import services as byok_services
from byok.egress import check_base_url
from byok.models import CredentialStatus, ProviderCredential, TenantByokSettings
from controlplane.core.errors import TollgateError
from enforcement.llm import upstream as upstream_cache
from enforcement.models import LlmCall

TENANT_KEY = "sk-tenant-own-key-0001"


def _chat(proxy, tenant):
    return openai.OpenAI(
        base_url=proxy.url + "/v1", api_key=tenant.plaintext, max_retries=0
    ).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=5
    )


def test_the_tenants_own_key_is_used_and_a_broken_one_never_falls_back(
    proxy, llm_tenant, fake_upstream
):
    credential = byok_services.credential_create(
        tenant=llm_tenant, provider="openai", api_key=TENANT_KEY
    )
    _chat(proxy, llm_tenant)
    assert fake_upstream.requests[-1]["headers"]["authorization"] == f"Bearer {TENANT_KEY}"
    sent = len(fake_upstream.requests)
    # The credential breaks (liveness found it invalid): the platform key is allowed for
    # openai, and still not used.
    ProviderCredential.objects.filter(pk=credential.pk).update(status=CredentialStatus.INVALID)
    upstream_cache.clear()
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(proxy, llm_tenant)
    assert caught.value.status_code == 424
    assert caught.value.body["code"] == "BYOK_CREDENTIAL_UNAVAILABLE"
    assert len(fake_upstream.requests) == sent  # nothing left, with either key
    assert LlmCall.objects.count() == 1


@pytest.mark.parametrize("limiter", ["redis", "none"])
def test_without_credential_or_opt_in_nothing_is_sent(
    proxy, llm_tenant, fake_upstream, settings, limiter
):
    if limiter == "none":  # the embedded demo: no Redis, so no rate limits or abuse counters
        settings.PROTECTION_REDIS_URL = ""
    TenantByokSettings.objects.filter(tenant=llm_tenant).update(platform_providers=[])
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(proxy, llm_tenant)
    assert caught.value.status_code == 424 and caught.value.body["code"] == "LLM_NO_CREDENTIAL"
    assert fake_upstream.requests == []


def test_a_credentials_own_base_url_is_used_when_the_operator_allows_its_host(
    proxy, llm_tenant, fake_upstream, settings
):
    # The fake upstream listens on 127.0.0.1: a private address, refused by default.
    with pytest.raises(TollgateError) as caught:
        byok_services.credential_create(
            tenant=llm_tenant, provider="openai", api_key=TENANT_KEY, base_url=fake_upstream.url
        )
    assert caught.value.code == "BYOK_BASE_URL_FORBIDDEN"
    settings.LLM_EGRESS_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.BYOK_PROVIDER_BASE_URLS = {}  # no deployment override: only the credential's URL
    byok_services.credential_create(
        tenant=llm_tenant, provider="openai", api_key=TENANT_KEY, base_url=fake_upstream.url
    )
    _chat(proxy, llm_tenant)
    assert fake_upstream.requests[-1]["headers"]["authorization"] == f"Bearer {TENANT_KEY}"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://10.0.0.5/v1",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "ftp://example.com/",
        "https://user:pw@example.com/",
    ],
)
def test_the_egress_check_refuses_private_and_odd_urls(url, settings):
    settings.LLM_EGRESS_ALLOWED_HOSTS = []
    with pytest.raises(TollgateError) as caught:
        check_base_url(url)
    assert caught.value.code == "BYOK_BASE_URL_FORBIDDEN"


def test_the_egress_check_accepts_a_public_https_host(settings):
    settings.LLM_EGRESS_ALLOWED_HOSTS = []
    resolve = lambda host, port: [(2, 1, 6, "", ("93.184.215.14", port))]  # noqa: E731
    assert check_base_url("https://vllm.example.com", resolve=resolve)
    private = lambda host, port: [(2, 1, 6, "", ("192.168.1.4", port))]  # noqa: E731
    with pytest.raises(TollgateError):  # a public name resolving to a private address
        check_base_url("https://vllm.example.com", resolve=private)
