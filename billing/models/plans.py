"""Plans (a copy of the curated catalog, so tenants can reference them) and each tenant's plan."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.tenancy.models import TenantScopedQuerySet


class Plan(models.Model):
    """A sellable plan; ``features`` lists entitlement keys of ``billing.catalog.ENTITLEMENTS``
    and ``limits`` maps each of ``billing.catalog.LIMIT_KEYS`` to a count (null = unlimited)."""

    code = models.SlugField(primary_key=True, max_length=50)
    name = models.CharField(max_length=200)
    rank = models.PositiveSmallIntegerField(default=0, help_text="Upgrade order.")
    features = models.JSONField(default=list, blank=True)
    limits = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rank", "code"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="billing_plan_name_nonempty"),
        ]

    def __str__(self) -> str:
        return self.name

    def has_feature(self, feature: str) -> bool:
        return isinstance(self.features, list) and feature in self.features


class TenantPlan(models.Model):
    """The plan a tenant is on (one row per tenant; no row means the default plan)."""

    tenant = models.OneToOneField(
        "tenancy.Tenant", on_delete=models.PROTECT, primary_key=True, related_name="plan"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant_id"]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.plan_id}"
