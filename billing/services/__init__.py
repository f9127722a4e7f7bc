"""Billing writes. Import from the submodules; the names below stay importable from here."""

from billing.services.plans import plan_upsert, plans_sync, tenant_plan_set

__all__ = ["plan_upsert", "plans_sync", "tenant_plan_set"]
