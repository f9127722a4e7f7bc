"""Plan writes: copy the catalog's plans into the database and put tenants on plans."""

from __future__ import annotations

from django.db import transaction

from billing import catalog
from billing.models import Plan, TenantPlan
from controlplane.audit.services import ledger_append_control


def _validated(features, limits) -> tuple[list[str], dict]:
    unknown = sorted(set(features) - set(catalog.ENTITLEMENTS))
    if unknown:
        raise ValueError(
            f"unknown entitlement(s) {unknown}; the catalog has {sorted(catalog.ENTITLEMENTS)}"
        )
    extra = sorted(set(limits) - set(catalog.LIMIT_KEYS))
    if extra:
        raise ValueError(f"unknown limit(s) {extra}; known: {list(catalog.LIMIT_KEYS)}")
    for key, value in limits.items():
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ValueError(f"limit {key} must be a non-negative int or None")
    return sorted(set(features)), dict(limits)


def plan_upsert(
    *,
    code: str,
    name: str,
    features: list[str],
    limits: dict | None = None,
    rank: int | None = None,
) -> Plan:
    """Create or update a plan (operator data, not tenant data: no ledger entry).

    ``features`` may only name catalog entitlements. Limits not given keep their value (a new
    plan starts from the catalog plan of the same code, else from the default plan's limits).
    """
    base = catalog.PLANS.get(code) or catalog.PLANS[catalog.DEFAULT_PLAN]
    with transaction.atomic():
        existing = Plan.objects.select_for_update().filter(code=code).first()
        merged = dict(existing.limits if existing and existing.limits else base.limits)
        merged.update(limits or {})
        clean_features, clean_limits = _validated(features, merged)
        plan, _ = Plan.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "features": clean_features,
                "limits": clean_limits,
                "rank": base.rank if rank is None else rank,
            },
        )
    return plan


def plan_from_catalog(code: str) -> Plan:
    """The plan row of a catalog plan, written from the catalog when missing (or empty)."""
    plan = Plan.objects.filter(code=code).first()
    if plan is not None and plan.limits:
        return plan
    spec = catalog.PLANS[code]
    return plan_upsert(
        code=spec.code,
        name=spec.name,
        features=list(spec.entitlements),
        limits=spec.limits,
        rank=spec.rank,
    )


def plans_sync() -> list[Plan]:
    """Write every catalog plan to the database exactly as the catalog defines it."""
    return [
        plan_upsert(
            code=spec.code,
            name=spec.name,
            features=list(spec.entitlements),
            limits=spec.limits,
            rank=spec.rank,
        )
        for spec in catalog.PLANS.values()
    ]


def tenant_plan_set(*, tenant, plan: Plan | str) -> TenantPlan:
    """Put ``tenant`` on ``plan`` (a row or a catalog code); a no-op when it already is."""
    from billing.gates.cache import invalidate_tenant_now_and_at_commit

    if isinstance(plan, str):
        plan = plan_from_catalog(plan)
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
            payload={
                "from": previous,
                "to": plan.code,
                "features": list(plan.features),
                "limits": dict(plan.limits),
            },
        )
        invalidate_tenant_now_and_at_commit(tenant.pk)
    return current


def tenant_created_default_plan(*, tenant) -> None:
    """Tenant-created hook: every new tenant starts on ``settings.BILLING_DEFAULT_PLAN``."""
    from django.conf import settings

    tenant_plan_set(tenant=tenant, plan=settings.BILLING_DEFAULT_PLAN)
