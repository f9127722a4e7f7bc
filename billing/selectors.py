"""Billing reads used by API, admin and the dashboard."""

from __future__ import annotations

from billing import entitlements
from billing.catalog import BYOK
from billing.models import DunningCampaign, Invoice, Subscription

__all__ = [
    "BYOK",
    "has_entitlement",
    "open_dunning",
    "require_entitlement",
    "subscription_of",
    "tenant_features",
]

# Older names of the entitlement check; ``billing.entitlements`` is the one implementation.
tenant_features = entitlements.tenant_features
has_entitlement = entitlements.enabled
require_entitlement = entitlements.require


def subscription_of(tenant) -> Subscription | None:
    """The tenant's subscription; None for tenants billed outside a payment provider."""
    return Subscription.objects.filter(tenant_id=getattr(tenant, "pk", tenant)).first()


def open_dunning(tenant) -> DunningCampaign | None:
    """The tenant's active dunning campaign, if any (with its invoice)."""
    return (
        DunningCampaign.objects.select_related("invoice")
        .filter(tenant_id=getattr(tenant, "pk", tenant), state=DunningCampaign.State.ACTIVE)
        .first()
    )


def open_invoices(tenant) -> list[Invoice]:
    return list(
        Invoice.objects.for_tenant(getattr(tenant, "pk", tenant)).filter(status=Invoice.Status.OPEN)
    )
