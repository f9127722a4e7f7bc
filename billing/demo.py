"""Demo data for ``manage.py seed_demo``: a plan with BYOK for the demo tenant."""

from __future__ import annotations

from billing.selectors import BYOK
from billing.services import plan_upsert, tenant_plan_set


def seed_billing_demo(*, tenant, stdout) -> None:
    """Idempotent: the demo tenant is on the ``pro`` plan, which includes BYOK."""
    plan = plan_upsert(code="pro", name="Pro", features=[BYOK])
    tenant_plan_set(tenant=tenant, plan=plan)
