"""Versioned policy documents. A version's document never changes; only its state moves."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


class Policy(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        RETIRED = "retired"

    IMMUTABLE_FIELDS = ("tenant_id", "version", "document", "source_text", "sha256")

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("pol"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="policies")
    version = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    document = models.JSONField(help_text="The normalised document (defaults merged).")
    source_text = models.TextField(blank=True, default="", help_text="The text as submitted.")
    source_format = models.CharField(max_length=8, default="yaml")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the canonical JSON document.")
    warnings = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=500, blank=True, default="")
    rolled_back_from = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    published_by = models.CharField(max_length=200, blank=True, default="")
    published_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version"], name="policy_version_unique"),
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(state="published"),
                name="policy_one_published_per_tenant",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="policy_version_positive"),
            models.CheckConstraint(
                condition=Q(state__in=["draft", "published", "retired"]), name="policy_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(state="draft") | Q(published_at__isnull=False),
                name="policy_published_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"policy v{self.version} ({self.state}) of {self.tenant_id}"

    def save(self, *args, **kwargs):
        loaded = getattr(self, "_loaded", None)
        if loaded:
            changed = [f for f, v in loaded.items() if getattr(self, f) != v]
            if changed:
                raise ValueError(
                    f"policy v{self.version} is immutable: {', '.join(changed)} changed"
                )
        super().save(*args, **kwargs)
        self._loaded = {f: getattr(self, f) for f in self.IMMUTABLE_FIELDS}

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded = {
            f: getattr(instance, f) for f in cls.IMMUTABLE_FIELDS if f in field_names
        }
        return instance
