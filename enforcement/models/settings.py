"""Per-tenant gate settings: the stand-in the policy document will replace (same fields)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def default_modes() -> dict:
    """Mode per source x environment class; ``*`` is the fallback source."""
    return {"*": {"prod": "hard", "nonprod": "hard"}}


def default_fail_modes() -> dict:
    return {"prod": "closed", "nonprod": "open"}


def default_prod_environments() -> list:
    return ["prod", "production"]


class TenantGateSettings(models.Model):
    tenant = models.OneToOneField(
        "tenancy.Tenant", on_delete=models.CASCADE, primary_key=True, related_name="gate_settings"
    )
    prod_environments = models.JSONField(default=default_prod_environments)
    modes = models.JSONField(default=default_modes)
    fail_modes = models.JSONField(default=default_fail_modes)
    approval_threshold_micros = models.BigIntegerField(null=True, blank=True)
    plan_ceiling_micros = models.BigIntegerField(null=True, blank=True)
    enterprise_ceiling_micros = models.BigIntegerField(null=True, blank=True)
    unbudgeted = models.CharField(
        max_length=8, choices=[("allow", "allow"), ("deny", "deny")], default="allow"
    )
    default_ttl_seconds = models.PositiveIntegerField(default=900)
    max_ttl_seconds = models.PositiveIntegerField(default=7 * 24 * 3600)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tenant gate settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(approval_threshold_micros__isnull=True)
                | Q(approval_threshold_micros__gte=0),
                name="gate_settings_threshold_nonneg",
            ),
            models.CheckConstraint(
                condition=Q(default_ttl_seconds__gte=1)
                & Q(default_ttl_seconds__lte=models.F("max_ttl_seconds")),
                name="gate_settings_ttl_bounds",
            ),
        ]

    def __str__(self) -> str:
        return f"gate settings for {self.tenant_id}"
