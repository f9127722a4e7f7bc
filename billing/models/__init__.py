"""Billing data: plans, subscriptions, invoices, payment events, dunning."""

from billing.models.dunning import DunningAttempt, DunningCampaign
from billing.models.plans import Plan, TenantPlan
from billing.models.prices import ModelPrice, PriceCatalog, PriceCatalogFetch
from billing.models.subscriptions import Invoice, PaymentEvent, Subscription

__all__ = [
    "DunningAttempt",
    "DunningCampaign",
    "Invoice",
    "ModelPrice",
    "PaymentEvent",
    "Plan",
    "PriceCatalog",
    "PriceCatalogFetch",
    "Subscription",
    "TenantPlan",
]
