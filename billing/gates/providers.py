"""Where the lifecycle and billing gates get their facts: this deployment's database, or a
gate state service over HTTP. Each call has its own timeout; any failure is a ProviderError.

The HTTP contract (docs/billing.md#gate-state-service), all JSON, ``Authorization: Bearer
<GATE_STATE_SERVICE_TOKEN>`` when set:

- ``GET {base}/v1/tenants/{tenant_id}/lifecycle`` -> ``{"state": "active|suspended|canceled|
  terminated", "reason": "..."}``
- ``GET {base}/v1/tenants/{tenant_id}/billing`` -> ``{"plan": {"code", "name", "rank",
  "limits": {...}}, "subscription": {"state", "grace_until": ISO 8601 | null} | null}``
- ``GET {base}/v1/tenants/{tenant_id}/usage`` -> ``{"decisions_per_month": 123}``
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils.dateparse import parse_datetime

from billing import catalog

LIFECYCLE_STATES = ("active", "suspended", "canceled", "terminated")
SUBSCRIPTION_STATES = ("trialing", "active", "past_due", "suspended", "canceled")


class ProviderError(Exception):
    """The provider did not give a usable answer in time (timeout, error, malformed answer)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind  # timeout | error | invalid


@dataclass(frozen=True, slots=True)
class LifecycleState:
    state: str  # one of LIFECYCLE_STATES
    reason: str = ""

    @property
    def blocked(self) -> bool:
        return self.state != "active"


@dataclass(frozen=True, slots=True)
class BillingState:
    plan_code: str
    plan_name: str
    plan_rank: int
    limits: dict[str, int | None] = field(default_factory=dict)
    subscription_state: str | None = None  # None: billed outside a payment provider
    grace_until: datetime | None = None


def effective_lifecycle(tenant_lifecycle: str, subscription_state: str | None) -> LifecycleState:
    """One access state from the operator's switch and the subscription (docs/decisions/0006)."""
    if tenant_lifecycle == "terminated":
        return LifecycleState("terminated", "tenant terminated by an operator")
    if tenant_lifecycle == "suspended":
        return LifecycleState("suspended", "tenant suspended by an operator")
    if subscription_state == "suspended":
        return LifecycleState("suspended", "subscription suspended for non-payment")
    if subscription_state == "canceled":
        return LifecycleState("canceled", "subscription canceled")
    return LifecycleState("active")


# --- usage counters (registered by higher layers) ----------------------------------------------

# name -> callable(tenant_id) -> int. Enforcement registers "decisions_per_month".
USAGE_COUNTERS: dict[str, Callable[[str], int]] = {}


def register_usage_counter(name: str, counter: Callable[[str], int]) -> None:
    if name not in catalog.LIMIT_KEYS:
        raise ValueError(f"{name!r} is not a plan limit")
    USAGE_COUNTERS[name] = counter


# --- database ----------------------------------------------------------------------------------


def _bounded_read(timeout_ms: int, read: Callable[[], Any]) -> Any:
    """Run ``read`` in a transaction whose statements and lock waits stop after ``timeout_ms``.

    PostgreSQL only: SQLite (the embedded demo) has no statement timeout, and its IMMEDIATE
    transactions would take the write lock for a read, so there the read runs as it is.
    """
    if connection.vendor != "postgresql":
        try:
            return read()
        except DatabaseError as exc:
            raise ProviderError("error", type(exc).__name__) from exc
    try:
        with transaction.atomic():
            # Inside an outer transaction this atomic is a savepoint: the local settings would
            # outlive it, so they are put back after a successful read (a failed one rolls
            # back to the savepoint, which undoes them).
            nested = bool(connection.savepoint_ids)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), "
                    "set_config('lock_timeout', %s, true)",
                    [f"{int(timeout_ms)}ms", f"{int(timeout_ms)}ms"],
                )
            result = read()
            if nested:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
                    cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
            return result
    except DatabaseError as exc:
        sqlstate = getattr(exc.__cause__, "sqlstate", None)
        kind = "timeout" if sqlstate in ("57014", "55P03") else "error"
        raise ProviderError(kind, type(exc).__name__) from exc


class DatabaseLifecycleProvider:
    name = "lifecycle:database"

    def fetch(self, tenant_id: str) -> LifecycleState:
        from controlplane.tenancy.models import Tenant

        def read():
            return (
                Tenant.objects.filter(pk=tenant_id)
                .values_list("lifecycle", "subscription__state")
                .first()
            )

        row = _bounded_read(settings.LIFECYCLE_PROVIDER_TIMEOUT_MS, read)
        if row is None:
            return LifecycleState("terminated", "no such tenant")
        return effective_lifecycle(row[0], row[1])


class DatabaseBillingProvider:
    name = "billing:database"

    def fetch(self, tenant_id: str) -> BillingState:
        from controlplane.tenancy.models import Tenant

        def read():
            return (
                Tenant.objects.filter(pk=tenant_id)
                .values_list(
                    "plan__plan__code",
                    "plan__plan__name",
                    "plan__plan__rank",
                    "plan__plan__limits",
                    "subscription__state",
                    "subscription__grace_until",
                )
                .first()
            )

        row = _bounded_read(settings.BILLING_PROVIDER_TIMEOUT_MS, read)
        if row is None or row[0] is None:
            spec = catalog.PLANS[settings.BILLING_DEFAULT_PLAN]
            row = (
                spec.code,
                spec.name,
                spec.rank,
                spec.limits,
                *(row[4:] if row else (None, None)),
            )
        code, name, rank, limits, sub_state, grace = row
        return BillingState(
            plan_code=code,
            plan_name=name,
            plan_rank=rank,
            limits={k: (limits or {}).get(k) for k in catalog.LIMIT_KEYS},
            subscription_state=sub_state,
            grace_until=grace,
        )

    def usage(self, tenant_id: str) -> dict[str, int]:
        return _bounded_read(
            settings.BILLING_PROVIDER_TIMEOUT_MS,
            lambda: {name: int(count(tenant_id)) for name, count in USAGE_COUNTERS.items()},
        )


# --- gate state service over HTTP --------------------------------------------------------------


class HttpGateStateProvider:
    """Client of a gate state service (e.g. a central account service in front of billing)."""

    def __init__(self, *, gate: str, base_url: str, timeout_ms: int) -> None:
        self.name = f"{gate}:http"
        self._base = base_url.rstrip("/")
        token = settings.GATE_STATE_SERVICE_TOKEN
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_ms / 1000),
            headers={"Authorization": f"Bearer {token}"} if token else {},
            follow_redirects=False,
        )

    def _get(self, tenant_id: str, what: str) -> dict:
        try:
            response = self._client.get(f"{self._base}/v1/tenants/{tenant_id}/{what}")
        except httpx.TimeoutException as exc:
            raise ProviderError("timeout", type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise ProviderError("error", type(exc).__name__) from exc
        if response.status_code != 200:
            raise ProviderError("error", f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError("invalid", "not JSON") from exc
        if not isinstance(body, dict):
            raise ProviderError("invalid", "not a JSON object")
        return body

    def fetch(self, tenant_id: str):
        if self.name.startswith("lifecycle"):
            return self._lifecycle(self._get(tenant_id, "lifecycle"))
        return self._billing(self._get(tenant_id, "billing"))

    @staticmethod
    def _lifecycle(body: dict) -> LifecycleState:
        state = body.get("state")
        if state not in LIFECYCLE_STATES:
            raise ProviderError("invalid", f"lifecycle state {state!r}")
        return LifecycleState(state, str(body.get("reason") or ""))

    @staticmethod
    def _billing(body: dict) -> BillingState:
        plan = body.get("plan")
        if not isinstance(plan, dict) or not isinstance(plan.get("code"), str):
            raise ProviderError("invalid", "plan missing")
        limits = plan.get("limits") or {}
        if not isinstance(limits, dict) or any(
            v is not None and (isinstance(v, bool) or not isinstance(v, int))
            for v in limits.values()
        ):
            raise ProviderError("invalid", "limits must be integers or null")
        sub = body.get("subscription")
        state = grace = None
        if sub is not None:
            if not isinstance(sub, dict) or sub.get("state") not in SUBSCRIPTION_STATES:
                raise ProviderError("invalid", "subscription state")
            state = sub["state"]
            if sub.get("grace_until"):
                grace = parse_datetime(str(sub["grace_until"]))
                if grace is None or grace.tzinfo is None:
                    raise ProviderError("invalid", "grace_until")
        rank = plan.get("rank", 0)
        return BillingState(
            plan_code=plan["code"],
            plan_name=str(plan.get("name") or plan["code"]),
            plan_rank=rank if isinstance(rank, int) else 0,
            limits={k: limits.get(k) for k in catalog.LIMIT_KEYS},
            subscription_state=state,
            grace_until=grace,
        )

    def usage(self, tenant_id: str) -> dict[str, int]:
        body = self._get(tenant_id, "usage")
        out = {}
        for name, value in body.items():
            if name in catalog.LIMIT_KEYS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ProviderError("invalid", f"usage {name}")
                out[name] = value
        return out


def provider_for(gate: str):
    """The configured provider of ``gate`` (``lifecycle`` or ``billing``)."""
    setting = settings.LIFECYCLE_PROVIDER if gate == "lifecycle" else settings.BILLING_PROVIDER
    timeout = (
        settings.LIFECYCLE_PROVIDER_TIMEOUT_MS
        if gate == "lifecycle"
        else settings.BILLING_PROVIDER_TIMEOUT_MS
    )
    if setting == "database":
        return DatabaseLifecycleProvider() if gate == "lifecycle" else DatabaseBillingProvider()
    if setting.startswith(("http://", "https://")):
        return HttpGateStateProvider(gate=gate, base_url=setting, timeout_ms=timeout)
    raise ValueError(f"{gate.upper()}_PROVIDER must be 'database' or an http(s) URL")
