"""Billing data: plans, subscriptions, invoices, payment events, dunning."""

from billing.models.dunning import DunningAttempt, DunningCampaign
from billing.models.plans import Plan, TenantPlan
from billing.models.subscriptions import Invoice, PaymentEvent, Subscription

__all__ = [
    "DunningAttempt",
    "DunningCampaign",
    "Invoice",
    "PaymentEvent",
    "Plan",
    "Subscription",
    "TenantPlan",
]
