"""Plan limits on things a tenant creates (projects, budgets, keys, BYOK providers, approvers).

The creating service counts under a lock on the tenant row (``tenancy.plan_limits``), so two
concurrent creates cannot both take the last slot; this module only compares and explains.
Decisions per month are a usage limit and are enforced by the billing request gate instead.
"""

from __future__ import annotations

from billing import catalog
from billing.entitlements import tenant_plan
from billing.errors import BillingErrorCode
from controlplane.core.errors import TollgateError

_WHAT = {
    "projects": "projects",
    "budgets": "budgets",
    "api_keys": "active API keys",
    "decisions_per_month": "gate decisions this month",
    "byok_providers": "BYOK providers",
    "approvers": "approvers",
}


def plan_limits(plan) -> dict[str, int | None]:
    limits = plan.limits if hasattr(plan, "limits") else {}
    return {key: limits.get(key) for key in catalog.LIMIT_KEYS}


def limit_error(*, plan, limit: str, allowed: int, count: int) -> TollgateError:
    """402 ``PAYMENT_REQUIRED`` naming the limit, the plan and the plan that would allow it."""
    upgrade = catalog.cheapest_plan_allowing(limit, count)
    what = _WHAT.get(limit, limit)
    remediation = (
        f"Upgrade to the {upgrade.name} plan (or higher)"
        if upgrade and upgrade.rank > getattr(plan, "rank", -1)
        else "Ask your Tollgate operator for a higher limit"
    )
    if limit == "decisions_per_month":
        remediation += ", or wait for the next calendar month (UTC)."
    else:
        remediation += f", or remove some {what}."
    return TollgateError(
        BillingErrorCode.PAYMENT_REQUIRED,
        f"Your {plan.name} plan allows {allowed} {what}; this would make {count}.",
        remediation=remediation,
        status=402,
        extra={
            "reason": "plan_limit",
            "limit": limit,
            "allowed": allowed,
            "plan": getattr(plan, "code", None),
            "upgrade_to": upgrade.code if upgrade else None,
        },
    )


def check_limit(*, tenant, limit: str, count: int) -> None:
    """Raise 402 when ``count`` (the number after the change) exceeds the plan's ``limit``."""
    if limit not in catalog.LIMIT_KEYS:
        raise ValueError(f"unknown plan limit {limit!r}")
    plan = tenant_plan(tenant)
    allowed = plan_limits(plan)[limit]
    if allowed is not None and count > allowed:
        raise limit_error(plan=plan, limit=limit, allowed=allowed, count=count)
