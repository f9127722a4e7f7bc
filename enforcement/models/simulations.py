"""Policy simulation jobs: a replay runs in a worker, the API reports its progress and result."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet

SIMULATION_STATES = ["queued", "running", "succeeded", "failed"]


class SimulationJob(models.Model):
    """One replay of a window of stored decisions against a candidate policy."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("sim"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, related_name="simulation_jobs"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    policy_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The stored version simulated (null: an inline draft)."
    )
    policy_sha256 = models.CharField(max_length=64)
    document = models.JSONField(
        null=True, blank=True, help_text="The normalised inline document (null for a version)."
    )
    since = models.DateTimeField()
    until = models.DateTimeField()
    # A bound API key simulates only the decisions inside its binding.
    project = models.ForeignKey(
        "tenancy.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    environment = models.CharField(max_length=63, blank=True, default="")
    requested_by = models.CharField(max_length=200, blank=True, default="")
    max_decisions = models.PositiveIntegerField()
    total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Decisions to replay (at most max_decisions)."
    )
    processed = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last progress of the worker running it."
    )

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=SIMULATION_STATES), name="simulation_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(since__lt=models.F("until")), name="simulation_window_order"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["succeeded", "failed"], finished_at__isnull=False)
                | (~Q(state__in=["succeeded", "failed"]) & Q(finished_at__isnull=True)),
                name="simulation_finished_iff_done",
            ),
        ]
        indexes = [
            models.Index(
                fields=["state", "heartbeat_at"],
                condition=Q(state__in=["queued", "running"]),
                name="simulation_active_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.state})"
