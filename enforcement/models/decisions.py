"""Decisions (the answers), reservations (the money held) and their allocations."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet

OUTCOMES = ["ALLOW", "ALLOW_WITH_CREDITS", "REQUIRE_APPROVAL", "DENY"]
MODES = ["shadow", "soft", "hard"]


class Decision(models.Model):
    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("dec"), editable=False
    )
    # No index of its own: every read by tenant uses the composite indexes below (tenant first).
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.PROTECT, related_name="decisions", db_index=False
    )
    source = models.CharField(max_length=32)
    idempotency_key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=71)
    project = models.ForeignKey(
        "tenancy.Project", on_delete=models.PROTECT, related_name="decisions"
    )
    environment = models.CharField(max_length=63)
    outcome = models.CharField(max_length=24)
    evaluated_outcome = models.CharField(max_length=24)
    mode = models.CharField(max_length=8)
    enforced = models.BooleanField()
    reason_code = models.CharField(max_length=64)
    amount_micros = models.BigIntegerField()
    request = models.JSONField()
    # The answer, stored once: the waterfall and the context are read from it.
    response = models.JSONField()
    policy_version = models.IntegerField(null=True, blank=True)
    policy_sha256 = models.CharField(max_length=64, blank=True, default="")
    fail_open = models.BooleanField(default=False)
    snapshot = models.JSONField(
        default=dict,
        blank=True,
        help_text="The locked balances the decision saw (budgets, grants read), for simulation.",
    )
    created_at = models.DateTimeField()

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source", "idempotency_key"], name="decision_idempotency_unique"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=OUTCOMES), name="decision_outcome_valid"
            ),
            models.CheckConstraint(condition=Q(mode__in=MODES), name="decision_mode_valid"),
            models.CheckConstraint(
                condition=Q(amount_micros__gte=0), name="decision_amount_nonneg"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="decision_tenant_recent_idx"),
            models.Index(fields=["tenant", "outcome", "-id"], name="decision_tenant_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.outcome}"

    @property
    def waterfall(self) -> list[dict]:
        """The waterfall stages of the answer."""
        return (self.response or {}).get("waterfall") or []

    @property
    def context(self) -> dict | None:
        """The spend context of the answer (burn rate, forecast, risk)."""
        return (self.response or {}).get("context")


class Reservation(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        COMMITTED = "committed"
        INVOICED = "invoiced"
        RELEASED = "released"
        EXPIRED = "expired"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("res"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.PROTECT, related_name="reservations"
    )
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="reservation")
    amount_micros = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    expires_at = models.DateTimeField()
    reported_micros = models.BigIntegerField(null=True, blank=True)
    invoiced_micros = models.BigIntegerField(null=True, blank=True)
    overage_micros = models.BigIntegerField(default=0)
    late = models.BooleanField(default=False)
    usage = models.JSONField(default=dict, blank=True)
    external_ref = models.CharField(max_length=255, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    invoiced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "committed", "invoiced", "released", "expired"]),
                name="reservation_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(amount_micros__gte=0), name="reservation_amount_nonneg"
            ),
            models.CheckConstraint(
                condition=Q(reported_micros__isnull=True) | Q(reported_micros__gte=0),
                name="reservation_reported_nonneg",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["committed", "invoiced"])
                | Q(reported_micros__isnull=False),
                name="reservation_committed_has_amount",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(state="pending"), name="reservation_expiry_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.state}"


class ReservationAllocation(models.Model):
    """What one reservation drew from one budget period or one credit grant."""

    reservation = models.ForeignKey(
        Reservation, on_delete=models.PROTECT, related_name="allocations"
    )
    budget_period = models.ForeignKey(
        "enforcement.BudgetPeriod",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    credit_grant = models.ForeignKey(
        "enforcement.CreditGrant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amount_micros = models.BigIntegerField()
    charged_micros = models.BigIntegerField(default=0)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["reservation_id", "position"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(budget_period__isnull=False) & Q(credit_grant__isnull=True))
                | (Q(budget_period__isnull=True) & Q(credit_grant__isnull=False)),
                name="allocation_exactly_one_source",
            ),
            models.CheckConstraint(condition=Q(amount_micros__gt=0), name="allocation_amount_pos"),
            models.CheckConstraint(
                condition=Q(charged_micros__gte=0), name="allocation_charged_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reservation_id}#{self.position}"

    @property
    def kind(self) -> str:
        return "budget" if self.budget_period_id else "credit"

    @property
    def ref(self) -> str:
        return self.budget_period_id or self.credit_grant_id
