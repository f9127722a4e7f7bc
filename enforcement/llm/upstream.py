"""Where an LLM call goes and with which key: BYOK through ``resolve_credential``, or the
platform key where the tenant opted in for that provider. Never a silent switch.

``resolve_credential`` raises 424 ``BYOK_CREDENTIAL_UNAVAILABLE`` for a tenant credential that
is not usable (or missing while required): that error reaches the caller, the platform key is
not tried. With no credential and no opt-in the call is refused (424 ``LLM_NO_CREDENTIAL``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings

from byok.egress import check_base_url
from byok.models import ProviderCredential, TenantByokSettings
from byok.providers.registry import UnknownProvider, get_adapter
from byok.services import base_url_for, resolve_credential
from byok.vault import open_secret
from controlplane.core.errors import TollgateError
from enforcement.errors import EnforcementErrorCode


@dataclass(frozen=True)
class Upstream:
    provider: str
    base_url: str
    headers: dict[str, str]  # authentication for the provider (never logged)
    credential: str  # "byok:<id>" or "platform"

    def __repr__(self) -> str:  # the headers hold a key
        return f"<Upstream {self.provider} {self.base_url} {self.credential}>"


_cache: dict[tuple[str, str], tuple[float, Upstream]] = {}
_lock = threading.Lock()


def clear() -> None:
    with _lock:
        _cache.clear()


def _no_credential(provider: str) -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.LLM_NO_CREDENTIAL,
        f"This tenant has no {provider} credential and does not allow the platform key for "
        f"{provider}; the call was not sent.",
        status=424,
        extra={"provider": provider},
    )


def _platform_allowed(tenant_id: str, provider: str) -> bool:
    row = TenantByokSettings.objects.filter(tenant_id=tenant_id).first()
    return row is not None and provider in (row.platform_providers or [])


def resolve_upstream(tenant, provider: str) -> Upstream:
    """The upstream of one call (cached ``LLM_UPSTREAM_CACHE_SECONDS`` per tenant + provider)."""
    key = (tenant.pk, provider)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        adapter = get_adapter(provider)
    except UnknownProvider:
        raise _no_credential(provider) from None
    resolved = resolve_credential(tenant, provider)  # raises for a broken or required credential
    if resolved is not None:
        credential = ProviderCredential.objects.get(pk=resolved.credential_id)
        if credential.base_url:
            base = check_base_url(credential.base_url)
        else:
            base = base_url_for(provider) or adapter.default_base_url
        upstream = Upstream(
            provider=provider,
            base_url=base.rstrip("/"),
            headers=adapter.auth_headers(open_secret(credential)),
            credential=f"byok:{credential.pk}",
        )
    else:
        platform_key = (settings.LLM_PLATFORM_KEYS or {}).get(provider)
        if not platform_key or not _platform_allowed(tenant.pk, provider):
            raise _no_credential(provider)
        upstream = Upstream(
            provider=provider,
            base_url=(base_url_for(provider) or adapter.default_base_url).rstrip("/"),
            headers=adapter.auth_headers(platform_key),
            credential="platform",
        )
    if settings.LLM_UPSTREAM_CACHE_SECONDS > 0:
        with _lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[key] = (now + settings.LLM_UPSTREAM_CACHE_SECONDS, upstream)
    return upstream
