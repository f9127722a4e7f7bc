"""Actions: follow-ups that decisions and events request (notify, scale down, open a ticket),
run by external workers that lease them with a fencing epoch."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet

ACTION_STATES = ["pending", "leased", "completed", "failed", "cancelled"]


class Action(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"  # waiting for a worker (or for its retry time)
        LEASED = "leased"  # a worker holds it until lease_expires_at
        COMPLETED = "completed"
        FAILED = "failed"  # out of attempts, or failed for good
        CANCELLED = "cancelled"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("act"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="actions")
    project = models.ForeignKey(
        "tenancy.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    environment = models.CharField(max_length=63, blank=True, default="")
    kind = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    decision = models.ForeignKey(
        "enforcement.Decision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.CharField(max_length=200, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    # Fencing: every lease (and a cancel) increments it; only the holder of the current epoch
    # may complete or fail the action, so a worker whose lease lapsed cannot overwrite.
    epoch = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField()
    last_error = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=ACTION_STATES), name="action_state_valid"),
            models.CheckConstraint(
                condition=~Q(state="leased") | Q(lease_expires_at__isnull=False),
                name="action_leased_has_expiry",
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1) & Q(max_attempts__lte=100),
                name="action_max_attempts_range",
            ),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="action_idempotency_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "next_attempt_at", "id"],
                condition=Q(state__in=["pending", "leased"]),
                name="action_ready_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.id}): {self.state}"
