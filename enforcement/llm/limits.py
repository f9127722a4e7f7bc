"""Per-key, per-end-user and per-tenant request and token rates of LLM calls, and abuse signals.

Built on the project's one limiter (``controlplane.core.ratelimit`` through the protection
gate's Redis client, ``billing.gates.protection.limiter``): every limit of a call is checked
and charged in one Redis round trip, all or none. Requests per minute cost 1; tokens per minute
cost the call's reserved token bound (prompt bound + max output), charged before the call.
A Redis failure follows ``PROTECTION_FAIL_MODE`` like the request gate (money is still gated by
the budgets, which never fail open).

Abuse signals: each refused call (budget, rate, caps, credentials) is charged to a per-key and
a per-address limit of ``LLM_ABUSE_DENIALS_PER_MINUTE``; crossing it logs ``llm_abuse_signal``
and counts ``tollgate_llm_abuse_signals_total``.
"""

from __future__ import annotations

import math

import redis
import structlog
from django.conf import settings

from billing.gates.protection import limiter
from controlplane.core.errors import TollgateError
from controlplane.core.ratelimit import Limit
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import LLM_ABUSE_SIGNALS, LLM_DENIALS

log = structlog.get_logger(__name__)


def _limits(kind: str, *, key_id, end_user, tenant_id, per_key, per_user, per_tenant):
    out = []
    if per_key and key_id:
        out.append(Limit.per_window(f"llm:{kind}:key:{key_id}", per_key, 60))
    if per_user and end_user:
        out.append(Limit.per_window(f"llm:{kind}:user:{tenant_id}:{end_user}", per_user, 60))
    if per_tenant:
        out.append(Limit.per_window(f"llm:{kind}:tenant:{tenant_id}", per_tenant, 60))
    return out


def _refused(kind: str, limited_by: str, retry_after: float) -> TollgateError:
    scope = limited_by.split(":")[2] if limited_by else ""
    code = "RATE_LIMITED" if kind == "rpm" else EnforcementErrorCode.LLM_TOKENS_RATE_LIMITED
    what = "requests" if kind == "rpm" else "tokens"
    return TollgateError(
        code,
        f"Too many LLM {what} per minute for this {scope or 'caller'}.",
        status=429,
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
        extra={"limit": kind, "scope": scope},
    )


def check_rates(*, tenant_id: str, key_id: str | None, end_user: str, tokens: int) -> None:
    """Charge this call to the configured rpm and tpm limits, or raise 429. Without a limiter
    (no PROTECTION_REDIS_URL, as in the embedded demo) there are no rate limits, as for the
    protection gate of every other request."""
    s = settings
    if not s.PROTECTION_REDIS_URL:
        return
    checks = [
        (
            "rpm",
            1,
            _limits(
                "rpm",
                key_id=key_id,
                end_user=end_user,
                tenant_id=tenant_id,
                per_key=s.LLM_REQUESTS_PER_MINUTE_KEY,
                per_user=s.LLM_REQUESTS_PER_MINUTE_USER,
                per_tenant=s.LLM_REQUESTS_PER_MINUTE_TENANT,
            ),
        ),
        (
            "tpm",
            max(1, tokens),
            _limits(
                "tpm",
                key_id=key_id,
                end_user=end_user,
                tenant_id=tenant_id,
                per_key=s.LLM_TOKENS_PER_MINUTE_KEY,
                per_user=s.LLM_TOKENS_PER_MINUTE_USER,
                per_tenant=s.LLM_TOKENS_PER_MINUTE_TENANT,
            ),
        ),
    ]
    for kind, cost, limits in checks:
        if not limits:
            continue
        smallest = min(limits, key=lambda limit: limit.burst)
        if cost > smallest.burst:
            # No wait would let this call through: it alone is above the per-minute limit.
            raise TollgateError(
                EnforcementErrorCode.LLM_REQUEST_TOO_LARGE,
                f"This call needs {cost} tokens, more than the {smallest.burst} tokens per "
                f"minute allowed for this {smallest.key.split(':')[2]}.",
                status=413,
            )
        try:
            decision = limiter().check(limits, cost=cost)
        except redis.RedisError as exc:
            log.warning("llm_rate_limiter_failed", error=type(exc).__name__)
            if settings.PROTECTION_FAIL_MODE == "open":
                continue
            raise TollgateError(
                "PROTECTION_UNAVAILABLE",
                "The rate limiter is unavailable, so the call was refused.",
                status=503,
                headers={"Retry-After": "5"},
            ) from None
        if not decision.allowed:
            raise _refused(kind, decision.limited_by or "", decision.retry_after)


def note_denial(*, reason: str, tenant_id: str | None, key_id: str | None, client: str) -> None:
    """Count a refused call; log an abuse signal when a key or address keeps being refused."""
    LLM_DENIALS.labels(reason=reason).inc()
    per_minute = settings.LLM_ABUSE_DENIALS_PER_MINUTE
    if not per_minute or not settings.PROTECTION_REDIS_URL:
        return  # counted above; the abuse signal needs the limiter's Redis
    limits = [Limit.per_window(f"llm:deny:addr:{client}", per_minute, 60)] if client else []
    if key_id:
        limits.append(Limit.per_window(f"llm:deny:key:{key_id}", per_minute, 60))
    if not limits:
        return
    try:
        decision = limiter().check(limits)
    except redis.RedisError:
        return  # a signal, not a gate
    if not decision.allowed:
        scope = (decision.limited_by or "").split(":")[2]
        LLM_ABUSE_SIGNALS.labels(scope=scope).inc()
        log.warning(
            "llm_abuse_signal",
            scope=scope,
            tenant=tenant_id,
            api_key=key_id,
            client=client,
            reason=reason,
            threshold_per_minute=per_minute,
        )
