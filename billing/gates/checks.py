"""The three gate decisions. Each returns a ``Blocked`` problem to answer with, or None to pass;
degradations (fail open, last known answer) are noted on the ``GateRun`` for the response
header and counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import structlog
from django.conf import settings

from billing.errors import BillingErrorCode
from billing.gates import protection
from billing.gates.config import billing_bypass
from billing.gates.guard import Guarded, ProviderUnavailable
from billing.gates.metrics import (
    BILLING_BLOCKS,
    BILLING_BYPASS_ACTIVE,
    GATE_FAIL_CLOSED,
    GATE_FAIL_OPEN,
    GATE_LAST_KNOWN,
    LIFECYCLE_BLOCKS,
    PROTECTION_DECISIONS,
)
from billing.gates.providers import BillingState, provider_for
from billing.limits import limit_error

log = structlog.get_logger(__name__)


@dataclass
class Blocked:
    status: int
    code: str
    detail: str
    remediation: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@dataclass
class GateRun:
    """What one request went through: degraded gates end up in ``Tollgate-Degraded``."""

    degraded: list[str] = field(default_factory=list)

    def note(self, gate: str, source: str) -> None:
        if source == "last_known":
            GATE_LAST_KNOWN.labels(gate=gate).inc()
            self.degraded.append(f"{gate}=last_known")
        elif source == "fail_open":
            GATE_FAIL_OPEN.labels(gate=gate).inc()
            self.degraded.append(f"{gate}=fail_open")


@lru_cache(maxsize=8)
def _guarded(kind: str, provider_setting: str, ttl: float) -> Guarded:
    gate = kind.split(".")[0]
    provider = provider_for(gate)
    fetch = provider.usage if kind == "billing.usage" else provider.fetch
    return Guarded(kind=kind, provider=provider.name, fetch=fetch, ttl=ttl)


def guarded(kind: str) -> Guarded:
    """The guarded provider answer ``lifecycle``, ``billing.plan`` or ``billing.usage``."""
    if kind == "lifecycle":
        return _guarded(kind, settings.LIFECYCLE_PROVIDER, settings.LIFECYCLE_CACHE_SECONDS)
    if kind == "billing.plan":
        return _guarded(kind, settings.BILLING_PROVIDER, settings.BILLING_PLAN_CACHE_SECONDS)
    return _guarded(kind, settings.BILLING_PROVIDER, settings.BILLING_USAGE_CACHE_SECONDS)


def _unavailable(gate: str, code: str, exc: ProviderUnavailable) -> Blocked:
    GATE_FAIL_CLOSED.labels(gate=gate).inc()
    log.error("request_gate_fail_closed", gate=gate, provider=exc.provider, cause=exc.cause)
    return Blocked(
        503,
        code,
        f"The {gate} check is unavailable ({exc.cause}), so the request was refused.",
        "Retry shortly; nothing was done. Operators: see the gate runbooks in docs/operations.md.",
        headers={"Retry-After": "5"},
        extra={"gate": gate, "cause": exc.cause},
    )


def lifecycle_check(run: GateRun, tenant_id: str) -> Blocked | None:
    try:
        answer = guarded("lifecycle").get(tenant_id)
    except ProviderUnavailable as exc:
        if settings.LIFECYCLE_FAIL_MODE == "open":
            log.warning("request_gate_fail_open", gate="lifecycle", cause=exc.cause)
            run.note("lifecycle", "fail_open")
            return None
        return _unavailable("lifecycle", BillingErrorCode.LIFECYCLE_UNAVAILABLE, exc)
    run.note("lifecycle", answer.source)
    state = answer.value
    if not state.blocked:
        return None
    LIFECYCLE_BLOCKS.labels(state=state.state).inc()
    if state.state == "terminated":
        return Blocked(
            403,
            "TENANT_TERMINATED",
            "This tenant has been terminated.",
            "Its keys no longer work; contact your Tollgate operator.",
            extra={"state": state.state},
        )
    return Blocked(
        403,
        BillingErrorCode.TENANT_SUSPENDED,
        f"This tenant is {state.state}: {state.reason}.",
        "Pay the open invoice (the subscription resumes at once) or contact your Tollgate operator."
        if "subscription" in state.reason
        else "Contact your Tollgate operator to reactivate the tenant.",
        extra={"state": state.state, "reason": state.reason},
    )


def _bypassed(run: GateRun, exc: ProviderUnavailable) -> bool:
    bypass = billing_bypass()
    BILLING_BYPASS_ACTIVE.set(1 if bypass else 0)
    if bypass is None:
        return False
    log.warning(
        "billing_bypass_used",
        until=bypass.until.isoformat(),
        reason=bypass.reason,
        provider=exc.provider,
        cause=exc.cause,
    )
    run.note("billing", "fail_open")
    return True


def billing_check(run: GateRun, tenant_id: str, *, metered: bool) -> Blocked | None:
    try:
        answer = guarded("billing.plan").get(tenant_id)
        run.note("billing", answer.source)
        state: BillingState = answer.value
        blocked = _unpaid(state)
        if blocked is None and metered:
            blocked = _over_quota(run, tenant_id, state)
    except ProviderUnavailable as exc:
        if _bypassed(run, exc):
            return None
        return _unavailable("billing", BillingErrorCode.BILLING_UNAVAILABLE, exc)
    if blocked is not None:
        BILLING_BLOCKS.labels(reason=blocked.extra.get("reason", "")).inc()
    return blocked


def _unpaid(state: BillingState) -> Blocked | None:
    if state.subscription_state != "past_due" or state.grace_until is None:
        return None
    if datetime.now(UTC) <= state.grace_until:
        return None
    return Blocked(
        402,
        BillingErrorCode.PAYMENT_REQUIRED,
        f"Payment is overdue since before {state.grace_until.isoformat()} (grace period over).",
        "Pay the open invoice or update the payment method with your payment provider; "
        "requests work again as soon as the payment is confirmed.",
        extra={"reason": "unpaid", "grace_until": state.grace_until.isoformat()},
    )


def _over_quota(run: GateRun, tenant_id: str, state: BillingState) -> Blocked | None:
    allowed = state.limits.get("decisions_per_month")
    if allowed is None:
        return None
    answer = guarded("billing.usage").get(tenant_id)
    run.note("billing", answer.source)
    used = int(answer.value.get("decisions_per_month", 0))
    if used < allowed:
        return None
    error = limit_error(
        plan=_PlanView(state), limit="decisions_per_month", allowed=allowed, count=used + 1
    )
    return Blocked(402, error.code, error.message, error.remediation or "", extra=error.extra)


@dataclass(frozen=True)
class _PlanView:
    """The plan facts ``limit_error`` words its message with, from a cached BillingState."""

    state: BillingState

    @property
    def name(self) -> str:
        return self.state.plan_name

    @property
    def code(self) -> str:
        return self.state.plan_code

    @property
    def rank(self) -> int:
        return self.state.plan_rank


def protection_check(run: GateRun, tenant_id: str | None, api_key_id: str | None):
    verdict = protection.check(tenant_id=tenant_id, api_key_id=api_key_id)
    if verdict.source == "fail_open":
        PROTECTION_DECISIONS.labels(result="fail_open", scope="").inc()
        run.note("protection", "fail_open")
        return None
    if verdict.source == "fail_closed":
        PROTECTION_DECISIONS.labels(result="fail_closed", scope="").inc()
        GATE_FAIL_CLOSED.labels(gate="protection").inc()
        return Blocked(
            503,
            BillingErrorCode.PROTECTION_UNAVAILABLE,
            f"The rate limiter is unavailable ({verdict.cause}), so the request was refused.",
            "Retry shortly. Operators: check Redis (PROTECTION_REDIS_URL).",
            headers={"Retry-After": "5"},
            extra={"gate": "protection", "cause": verdict.cause},
        )
    if verdict.allowed:
        PROTECTION_DECISIONS.labels(result="allowed", scope="").inc()
        return None
    PROTECTION_DECISIONS.labels(result="limited", scope=verdict.scope).inc()
    who = {"key": "this API key", "tenant": "your tenant", "global": "this service"}[verdict.scope]
    return Blocked(
        429,
        BillingErrorCode.RATE_LIMITED,
        f"Too many requests for {who}.",
        f"Retry after {verdict.retry_after_header} s; spread requests out or ask for a higher "
        "limit.",
        headers={"Retry-After": verdict.retry_after_header},
        extra={"scope": verdict.scope, "retry_after_seconds": round(verdict.retry_after, 3)},
    )
