"""Budget alerts: a threshold or forecast crossing, recorded once per budget period."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


class BudgetAlert(models.Model):
    class Kind(models.TextChoices):
        THRESHOLD = "threshold"  # spend reached threshold_percent of the limit
        FORECAST = "forecast"  # the end-of-period forecast is above the limit

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("bal"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    budget = models.ForeignKey(
        "enforcement.Budget", on_delete=models.PROTECT, related_name="alerts"
    )
    budget_period = models.ForeignKey(
        "enforcement.BudgetPeriod", on_delete=models.PROTECT, related_name="alerts"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    threshold_percent = models.PositiveSmallIntegerField()
    spent_micros = models.BigIntegerField()
    limit_micros = models.BigIntegerField()
    forecast_micros = models.BigIntegerField(null=True, blank=True)
    fired_at = models.DateTimeField()

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-fired_at", "id"]
        constraints = [
            # Once per period per threshold, however many sweeps and workers evaluate it.
            models.UniqueConstraint(
                fields=["budget_period", "kind", "threshold_percent"], name="budget_alert_once"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["threshold", "forecast"]), name="budget_alert_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-fired_at"], name="budget_alert_recent_idx")]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.kind} {self.threshold_percent}%"
