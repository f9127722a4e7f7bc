"""BYOK health as operators read it: credentials, breaker per provider, today's quota use."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from byok.liveness import breaker_for
from byok.models import CredentialStatus, ProviderCredential
from byok.quota import daily_limit, quota_used_today


@dataclass(frozen=True)
class BreakerView:
    state: str  # closed | open | half_open | unknown
    failures: int | None
    detail: str = ""


@dataclass(frozen=True)
class ByokHealth:
    credentials: list[ProviderCredential]
    breakers: dict[str, BreakerView]  # by provider, for the providers of the credentials
    quota_used: int | None  # None when the quota store cannot be read
    quota_limit: int
    quota_detail: str = ""


def _breaker(provider: str) -> BreakerView:
    try:
        breaker = breaker_for(provider)
        return BreakerView(state=breaker.state(), failures=breaker.failure_count())
    except redis.RedisError as exc:
        return BreakerView(
            state="unknown", failures=None, detail=f"Redis unreachable ({type(exc).__name__})"
        )


def byok_health(*, tenant) -> ByokHealth:
    """Live credentials first, then revoked history; Redis read once per provider + once."""
    credentials = sorted(
        ProviderCredential.objects.for_tenant(tenant).defer("ciphertext"),
        key=lambda c: (c.status == CredentialStatus.REVOKED, c.provider, c.id),
    )
    providers = sorted({c.provider for c in credentials if c.status != CredentialStatus.REVOKED})
    try:
        used, detail = quota_used_today(tenant), ""
    except redis.RedisError as exc:
        used, detail = None, f"Redis unreachable ({type(exc).__name__})"
    return ByokHealth(
        credentials=credentials,
        breakers={provider: _breaker(provider) for provider in providers},
        quota_used=used,
        quota_limit=daily_limit(tenant),
        quota_detail=detail,
    )
