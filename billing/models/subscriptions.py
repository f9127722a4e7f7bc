"""Subscriptions (the payment state of a tenant), provider invoices and stored payment events."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet

SUBSCRIPTION_STATES = ["trialing", "active", "past_due", "suspended", "canceled"]


class Subscription(models.Model):
    """One per tenant. ``state`` changes only through ``subscription_transition``."""

    class State(models.TextChoices):
        TRIALING = "trialing"
        ACTIVE = "active"
        PAST_DUE = "past_due"
        SUSPENDED = "suspended"
        CANCELED = "canceled"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("sub"), editable=False
    )
    tenant = models.OneToOneField(
        "tenancy.Tenant", on_delete=models.PROTECT, related_name="subscription"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    provider = models.CharField(
        max_length=32, default="manual", help_text="stripe | standard | manual (invoiced offline)"
    )
    provider_customer_id = models.CharField(max_length=255, blank=True, default="")
    provider_subscription_id = models.CharField(max_length=255, blank=True, default="")
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    past_due_since = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(
        null=True, blank=True, help_text="While past due, requests pass until this moment."
    )
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # The provider timestamp of the newest event applied to ``state``: older events arriving
    # late are stored but do not move the state back (out-of-order delivery).
    provider_state_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=SUBSCRIPTION_STATES), name="subscription_state_valid"
            ),
            models.CheckConstraint(
                condition=~Q(state="past_due") | Q(grace_until__isnull=False),
                name="subscription_past_due_has_grace",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_customer_id"],
                condition=~Q(provider_customer_id=""),
                name="subscription_customer_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} ({self.state})"


class Invoice(models.Model):
    """A provider invoice of a subscription, as far as payment events told us."""

    class Status(models.TextChoices):
        OPEN = "open"
        PAID = "paid"
        VOID = "void"
        UNCOLLECTIBLE = "uncollectible"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("inv"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="invoices"
    )
    provider = models.CharField(max_length=32)
    provider_invoice_id = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    amount_due_micros = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    status_at = models.DateTimeField(help_text="Provider timestamp of the applied status.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_invoice_id"], name="invoice_provider_unique"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "paid", "void", "uncollectible"]),
                name="invoice_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(amount_due_micros__gte=0), name="invoice_amount_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider_invoice_id} ({self.status})"


class PaymentEvent(models.Model):
    """A verified payment-provider event, stored once by (provider, event id)."""

    class Outcome(models.TextChoices):
        APPLIED = "applied"
        STALE = "stale"  # older than what the subscription already reflects
        IGNORED = "ignored"  # a type we do not act on, or nothing to change
        UNMATCHED = "unmatched"  # no subscription for its customer

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("pev"), editable=False
    )
    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    occurred_at = models.DateTimeField(help_text="The provider's own timestamp of the event.")
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payload = models.JSONField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.CharField(max_length=300, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="payment_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} {self.event_type}"
