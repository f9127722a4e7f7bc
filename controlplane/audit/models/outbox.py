"""Transactional outbox: events written with the change, delivered later as signed webhooks."""

from __future__ import annotations

import base64
import secrets

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class WebhookEndpoint(models.Model):
    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("whk"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    # The signing secret must be readable to sign; it authenticates us to the receiver only.
    secret = models.CharField(max_length=100, default=new_webhook_secret)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty means all events.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class OutboxEvent(models.Model):
    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("evt"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(dispatched_at__isnull=True),
                name="outbox_undispatched_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"


class OutboxDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("dlv"), editable=False
    )
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "outbox deliveries"
        ordering = ["next_attempt_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="outbox_delivery_unique"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "delivered", "dead"]),
                name="outbox_delivery_state",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="outbox_delivery_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} ({self.state})"
