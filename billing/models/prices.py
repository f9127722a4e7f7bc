"""The model price catalog: versioned imports of LiteLLM-format JSON, one row per model.

Prices are integers in pico-dollars per token (1e-12 USD; the same number is micro-dollars
per million tokens), so no float ever reaches money. A catalog version is immutable: a refresh
writes a new version, and a reservation freezes the version, its hash and the prices it used.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory


class PriceCatalog(models.Model):
    """One imported version of the catalog; the highest version is the one in use."""

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("pcat"), editable=False
    )
    version = models.PositiveIntegerField(unique=True)
    sha256 = models.CharField(max_length=64, help_text="Hash of the canonical parsed entries.")
    source = models.CharField(max_length=500, help_text="File path or URL it was read from.")
    model_count = models.PositiveIntegerField()
    forced = models.BooleanField(
        default=False, help_text="Imported past the shrink guard by an operator."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.CheckConstraint(condition=Q(model_count__gt=0), name="billing_pcat_nonempty"),
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.model_count} models)"


class ModelPrice(models.Model):
    """A model's per-token prices (pico-dollars per token) in one catalog version."""

    catalog = models.ForeignKey(PriceCatalog, on_delete=models.CASCADE, related_name="prices")
    model = models.CharField(max_length=200)
    provider = models.CharField(max_length=64)
    mode = models.CharField(max_length=32, blank=True, default="")
    input_pusd = models.BigIntegerField()
    output_pusd = models.BigIntegerField()
    cache_read_pusd = models.BigIntegerField(null=True, blank=True)
    cache_creation_pusd = models.BigIntegerField(null=True, blank=True)
    reasoning_pusd = models.BigIntegerField(null=True, blank=True)
    max_input_tokens = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Long-context tiers: [{"above": 200000, "input": .., "output": .., ...}] ascending.
    tiers = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["catalog", "model"]
        constraints = [
            models.UniqueConstraint(fields=["catalog", "model"], name="billing_price_unique"),
            models.CheckConstraint(
                condition=Q(input_pusd__gte=0) & Q(output_pusd__gte=0),
                name="billing_price_nonneg",
            ),
        ]

    def __str__(self) -> str:
        return self.model


class PriceCatalogFetch(models.Model):
    """One import or scheduled refresh attempt and what came of it (kept for operators)."""

    class Outcome(models.TextChoices):
        IMPORTED = "imported"
        UNCHANGED = "unchanged"
        REFUSED_SHRINK = "refused_shrink"
        FAILED = "failed"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("pfet"), editable=False
    )
    source = models.CharField(max_length=500)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=1)
    catalog = models.ForeignKey(
        PriceCatalog, null=True, blank=True, on_delete=models.SET_NULL, related_name="fetches"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.outcome} {self.source}"
