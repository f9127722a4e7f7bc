"""Plan writes: define plans and put tenants on them (ledgered on the tenant control chain)."""

from __future__ import annotations

from django.db import transaction

from billing.models import Plan, TenantPlan
from controlplane.audit.services import ledger_append_control


def plan_upsert(*, code: str, name: str, features: list[str]) -> Plan:
    """Create or update a plan definition (operator data, not tenant data: no ledger entry)."""
    with transaction.atomic():
        plan, _ = Plan.objects.update_or_create(
            code=code, defaults={"name": name, "features": sorted(set(features))}
        )
    return plan


def tenant_plan_set(*, tenant, plan: Plan) -> TenantPlan:
    """Put ``tenant`` on ``plan``; a no-op (and no ledger entry) when it already is."""
    with transaction.atomic():
        current = TenantPlan.objects.select_for_update().filter(tenant=tenant).first()
        if current is not None and current.plan_id == plan.code:
            return current
        previous = current.plan_id if current is not None else None
        if current is None:
            current = TenantPlan.objects.create(tenant=tenant, plan=plan)
        else:
            current.plan = plan
            current.save(update_fields=["plan", "updated_at"])
        ledger_append_control(
            tenant_id=tenant.pk,
            kind="billing.plan.changed",
            payload={"from": previous, "to": plan.code, "features": list(plan.features)},
        )
    return current
