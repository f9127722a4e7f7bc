"""Demo data for ``manage.py seed_demo``: the demo tenant is on Enterprise (everything shown)."""

from __future__ import annotations

from billing.services.plans import tenant_plan_set


def seed_billing_demo(*, tenant, stdout) -> None:
    """Idempotent: every entitlement the demo shows (BYOK, credits, reconciliation, forecasts)."""
    tenant_plan_set(tenant=tenant, plan="enterprise")
