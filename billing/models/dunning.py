"""Dunning: a campaign per unpaid invoice, and one row per payment retry attempt."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


class DunningCampaign(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"  # retrying, or suspended and waiting for payment before cancel
        RECOVERED = "recovered"  # paid
        EXHAUSTED = "exhausted"  # every step ran; the subscription was canceled
        CLOSED = "closed"  # the subscription ended another way (canceled, invoice voided)

    class Stage(models.TextChoices):
        RETRYING = "retrying"
        SUSPENDED = "suspended"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("dun"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(
        "billing.Subscription", on_delete=models.PROTECT, related_name="dunning_campaigns"
    )
    invoice = models.OneToOneField(
        "billing.Invoice", on_delete=models.PROTECT, related_name="dunning_campaign"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.RETRYING)
    schedule_days = models.JSONField(
        help_text="Days after the first failure to retry, e.g. [0,3,5,7]."
    )
    max_attempts = models.PositiveSmallIntegerField()
    attempts_made = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField()
    next_action_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["active", "recovered", "exhausted", "closed"]),
                name="dunning_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(stage__in=["retrying", "suspended"]), name="dunning_stage_valid"
            ),
            models.CheckConstraint(
                condition=Q(attempts_made__lte=models.F("max_attempts")),
                name="dunning_attempts_bounded",
            ),
            models.CheckConstraint(
                condition=~Q(state="active") | Q(next_action_at__isnull=False),
                name="dunning_active_has_next",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_action_at"],
                condition=Q(state="active"),
                name="dunning_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.state}/{self.stage}"


class DunningAttempt(models.Model):
    class State(models.TextChoices):
        ENQUEUED = "enqueued"
        RUNNING = "running"  # a worker claimed it and is asking the provider
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("dat"), editable=False
    )
    campaign = models.ForeignKey(DunningCampaign, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.ENQUEUED)
    scheduled_for = models.DateTimeField()
    detail = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign_id", "number", "created_at"]
        constraints = [
            # One attempt per step, whatever the number of workers and beat schedulers.
            models.UniqueConstraint(fields=["campaign", "number"], name="dunning_attempt_once"),
            models.CheckConstraint(
                condition=Q(state__in=["enqueued", "running", "succeeded", "failed"]),
                name="dunning_attempt_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} #{self.number} {self.state}"
