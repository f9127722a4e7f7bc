"""Invoice reconciliation imports: a cloud bill (FOCUS CSV) or LLM provider usage (JSON)
matched to committed reservations; every line that did not match is kept and reported."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet

OUTCOMES = ["matched", "unmatched", "ambiguous", "already_invoiced", "not_committed", "invalid"]


class ReconciliationImport(models.Model):
    class Format(models.TextChoices):
        FOCUS_CSV = "focus_csv"
        OPENAI_COSTS = "openai_costs"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("rim"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    format = models.CharField(max_length=16, choices=Format.choices)
    filename = models.CharField(max_length=255, blank=True, default="")
    sha256 = models.CharField(max_length=64)
    actor = models.CharField(max_length=200, blank=True, default="")
    lines_total = models.PositiveIntegerField(default=0)
    lines_matched = models.PositiveIntegerField(default=0)
    lines_unmatched = models.PositiveIntegerField(default=0)
    reservations_invoiced = models.PositiveIntegerField(default=0)
    invoiced_micros = models.BigIntegerField(default=0)
    adjustment_micros = models.BigIntegerField(default=0)
    unmatched_micros = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The same file imported twice is the same import (no double posting).
            models.UniqueConstraint(fields=["tenant", "sha256"], name="reconciliation_import_once"),
            models.CheckConstraint(
                condition=Q(format__in=["focus_csv", "openai_costs"]),
                name="reconciliation_import_format_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.format} {self.filename}"


class ReconciliationLine(models.Model):
    """A line of an import (matched lines are grouped per reservation)."""

    import_run = models.ForeignKey(
        ReconciliationImport, on_delete=models.CASCADE, related_name="lines"
    )
    line_numbers = models.JSONField(help_text="Source line numbers (CSV rows, JSON results).")
    outcome = models.CharField(max_length=20)
    reason = models.CharField(max_length=300, blank=True, default="")
    reservation = models.ForeignKey(
        "enforcement.Reservation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    external_ref = models.CharField(max_length=255, blank=True, default="")
    amount_micros = models.BigIntegerField()
    adjustment_micros = models.BigIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["import_run_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=OUTCOMES), name="reconciliation_line_outcome"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.import_run_id} {self.outcome} {self.external_ref}"
