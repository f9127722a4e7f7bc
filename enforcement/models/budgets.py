"""Budgets, their periods (the money counters), credit grants and per-day spend rollups."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from controlplane.core.fields import CounterField
from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


class Budget(models.Model):
    class Period(models.TextChoices):
        MONTHLY = "monthly"
        DAILY = "daily"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("bud"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="budgets")
    name = models.CharField(max_length=200, blank=True, default="")
    project = models.ForeignKey(
        "tenancy.Project", null=True, blank=True, on_delete=models.PROTECT, related_name="budgets"
    )
    environment = models.CharField(max_length=63, blank=True, default="")
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTHLY)
    limit_micros = models.BigIntegerField()
    alert_thresholds = models.JSONField(
        null=True,
        blank=True,
        help_text="Percentages of the limit that raise an alert once per period; "
        "empty uses BUDGET_ALERT_DEFAULT_THRESHOLDS (50, 80, 90, 100).",
    )
    forecast_alert = models.BooleanField(
        default=False, help_text="Alert when the end-of-period forecast exceeds the limit."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(limit_micros__gte=0), name="budget_limit_nonneg"),
            models.CheckConstraint(
                condition=Q(environment="") | Q(project__isnull=False),
                name="budget_env_needs_project",
            ),
            models.CheckConstraint(
                condition=Q(period__in=["monthly", "daily"]), name="budget_period_valid"
            ),
            models.UniqueConstraint(
                fields=["tenant", "project", "environment", "period"],
                condition=Q(project__isnull=False),
                name="budget_scope_unique",
            ),
            models.UniqueConstraint(
                fields=["tenant", "period"],
                condition=Q(project__isnull=True),
                name="budget_tenant_scope_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.scope_label} {self.period}"

    @property
    def scope_label(self) -> str:
        if self.project_id is None:
            return "tenant"
        return f"{self.project.slug}/{self.environment}" if self.environment else self.project.slug


class BudgetPeriod(models.Model):
    """One period of a budget; ``reserved`` and ``spent`` are counters, never sums over rows."""

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("bpr"), editable=False
    )
    budget = models.ForeignKey(Budget, on_delete=models.PROTECT, related_name="periods")
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    period_start = models.DateField()
    period_end = models.DateField()  # exclusive
    limit_micros = models.BigIntegerField()
    # Sums of every draw and commit: wide, so recording real spend can never overflow.
    reserved_micros = CounterField(default=0)
    spent_micros = CounterField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start"], name="budget_period_unique"),
            models.CheckConstraint(condition=Q(reserved_micros__gte=0), name="bp_reserved_nonneg"),
            models.CheckConstraint(condition=Q(spent_micros__gte=0), name="bp_spent_nonneg"),
            models.CheckConstraint(condition=Q(limit_micros__gte=0), name="bp_limit_nonneg"),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="bp_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.period_start}"

    @property
    def available_micros(self) -> int:
        return self.limit_micros - self.reserved_micros - self.spent_micros


class CreditGrantQuerySet(TenantScopedQuerySet):
    def drawable(self, now) -> CreditGrantQuerySet:
        """Grants money may be drawn from at ``now``: effective, unexpired, not void, not empty.

        The one definition: the gate reads and locks exactly these, and a late commit charges
        only grants still in this set.
        """
        return self.filter(
            voided_at__isnull=True, remaining_micros__gt=0, effective_at__lte=now
        ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class CreditGrant(models.Model):
    class Pool(models.TextChoices):
        RESERVED = "reserved"
        EMERGENCY = "emergency"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("crd"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.PROTECT, related_name="credit_grants"
    )
    pool = models.CharField(max_length=16, choices=Pool.choices, default=Pool.RESERVED)
    amount_micros = models.BigIntegerField()
    remaining_micros = models.BigIntegerField()
    priority = models.IntegerField(default=100)
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CreditGrantQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(remaining_micros__gte=0) & Q(remaining_micros__lte=F("amount_micros")),
                name="grant_remaining_bounds",
            ),
            models.CheckConstraint(
                condition=Q(pool__in=["reserved", "emergency"]), name="grant_pool_valid"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=F("effective_at")),
                name="grant_expiry_after_effective",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "pool"],
                condition=Q(voided_at__isnull=True) & Q(remaining_micros__gt=0),
                name="grant_candidates_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.pool})"


class SpendRollup(models.Model):
    """Committed spend per tenant/project/environment/day, maintained on commit."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey("tenancy.Project", on_delete=models.PROTECT, related_name="+")
    environment = models.CharField(max_length=63)
    day = models.DateField()
    spent_micros = CounterField(default=0)

    class Meta:
        ordering = ["tenant_id", "project_id", "environment", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "project", "environment", "day"], name="spend_rollup_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.environment} {self.day}"
