"""Enforcement API shapes (the binding field names come from API.md)."""

from __future__ import annotations

from rest_framework import serializers

from controlplane.core.jsonlimits import (
    ATTRIBUTES_LIMITS,
    USAGE_LIMITS,
    FreeFormLimits,
    free_form_problem,
    labels_problem,
)
from controlplane.core.money import format_usd
from controlplane.core.serializers import PrintableKeyField, StrictSerializer, UsdField
from enforcement.models import Budget, CreditGrant, Decision, Reservation
from enforcement.models.decisions import OUTCOMES


class FreeForm:
    """Validator: a free-form JSON object within its limits (``controlplane.core.jsonlimits``).

    The fast body check (``enforcement.api.fastparse``) applies the same function, so both paths
    refuse exactly the same values before any work is done.
    """

    def __init__(self, limits: FreeFormLimits) -> None:
        self.limits = limits

    def __call__(self, value) -> None:
        problem = free_form_problem(value, self.limits)
        if problem is not None:
            raise serializers.ValidationError(problem)


def labels_within_limits(value) -> None:
    problem = labels_problem(value)
    if problem is not None:
        raise serializers.ValidationError(problem)


class ResourceSerializer(StrictSerializer):
    type = serializers.CharField(max_length=200, required=False, allow_blank=True)
    id = serializers.CharField(max_length=500, required=False, allow_blank=True)
    attributes = serializers.DictField(required=False, validators=[FreeForm(ATTRIBUTES_LIMITS)])


class GateDecisionRequestSerializer(StrictSerializer):
    source = serializers.RegexField(r"^[a-z][a-z0-9_.-]{0,31}$", default="api")
    project = serializers.SlugField(max_length=63, required=False)
    environment = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,63}$", required=False)
    action = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    resource = ResourceSerializer(required=False)
    estimated_cost_usd = UsdField(required=False, allow_null=True)
    monthly_delta_usd = UsdField(required=False, allow_null=True)
    hourly_delta_usd = UsdField(required=False, allow_null=True)
    labels = serializers.DictField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=dict,
        validators=[labels_within_limits],
    )
    requester = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    ttl_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    approval_token = serializers.CharField(required=False, allow_null=True, max_length=8192)
    idempotency_key = PrintableKeyField(required=False, min_length=1)


class ReservationAllocationOut(serializers.Serializer):
    kind = serializers.CharField()
    ref = serializers.CharField()
    period_id = serializers.CharField(allow_null=True)
    amount_usd = serializers.CharField()


class ReservationOut(serializers.Serializer):
    id = serializers.CharField()
    amount_usd = serializers.CharField()
    state = serializers.CharField()
    expires_at = serializers.DateTimeField()
    allocations = ReservationAllocationOut(many=True)


class WaterfallStageOut(serializers.Serializer):
    stage = serializers.ChoiceField(
        choices=[
            "plan_ceiling",
            "budget",
            "reserved_credits",
            "emergency_credits",
            "enterprise_ceiling",
        ]
    )
    ref = serializers.CharField()
    period_id = serializers.CharField(allow_null=True)
    passed = serializers.BooleanField()
    headroom_usd = serializers.CharField(allow_null=True)
    drawn_usd = serializers.CharField()


class ContextOut(serializers.Serializer):
    mtd_spend_usd = serializers.CharField()
    burn_rate_daily_usd = serializers.CharField()
    forecast_eom_usd = serializers.CharField()
    risk_class = serializers.ChoiceField(choices=["low", "medium", "high", "critical"])
    risk_score = serializers.FloatField()


class PolicyRefOut(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField(allow_null=True)


class GateApprovalOut(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField(help_text="pending | approved | denied | expired | cancelled")
    required_approvals = serializers.IntegerField()
    url = serializers.CharField()
    expires_at = serializers.DateTimeField()
    token = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="On a replay of the REQUIRE_APPROVAL call once approved: the approval token, "
        "for the API key that made the call, until it is used or expires.",
    )
    token_jti = serializers.CharField(
        required=False, help_text="On an approved continuation: the token it consumed."
    )


class RuleErrorOut(serializers.Serializer):
    rule_id = serializers.CharField()
    error = serializers.CharField()


class GateDecisionResponseSerializer(serializers.Serializer):
    """The gate answer. Every path (new, replay, continuation, dry run, fail-open) returns every
    field; one that does not apply is null or empty (``enforcement.services.gate.answer``)."""

    decision_id = serializers.CharField(
        allow_null=True, help_text="Null when nothing was recorded (fail-open, dry run)."
    )
    outcome = serializers.ChoiceField(choices=OUTCOMES)
    evaluated_outcome = serializers.ChoiceField(
        choices=OUTCOMES,
        allow_null=True,
        help_text="What hard mode would have answered (null on fail-open: nothing was evaluated).",
    )
    mode = serializers.ChoiceField(choices=["shadow", "soft", "hard"])
    enforced = serializers.BooleanField()
    breach = serializers.BooleanField()
    reason_code = serializers.CharField()
    message = serializers.CharField()
    remediation = serializers.CharField(allow_blank=True)
    fingerprint = serializers.CharField()
    idempotent_replay = serializers.BooleanField()
    dry_run = serializers.BooleanField(help_text="Decided as usual, recorded nothing.")
    amount_usd = serializers.CharField(
        allow_null=True, help_text="What the call reserves (null on fail-open without a cost)."
    )
    project = serializers.CharField(help_text="The project slug decided for.")
    environment = serializers.CharField()
    reservation = ReservationOut(allow_null=True)
    approval = GateApprovalOut(allow_null=True)
    waterfall = WaterfallStageOut(many=True)
    context = ContextOut(allow_null=True)
    rule_errors = RuleErrorOut(
        many=True, help_text="Policy rules that failed to evaluate (they fail closed)."
    )
    rule_id = serializers.CharField(
        allow_null=True, help_text="The policy rule that decided, if a rule did."
    )
    policy = PolicyRefOut()
    fail_open = serializers.BooleanField()
    fail_cause = serializers.ChoiceField(
        choices=["database", "deadline"],
        allow_null=True,
        help_text="Why a fail-open answer could not decide.",
    )
    continues_decision_id = serializers.CharField(
        allow_null=True,
        help_text="Only on an approved continuation: the REQUIRE_APPROVAL decision it continues.",
    )
    created_at = serializers.DateTimeField(allow_null=True)


class DecisionSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    waterfall = serializers.JSONField(read_only=True, help_text="The answer's waterfall.")
    context = serializers.JSONField(read_only=True, help_text="The answer's spend context.")
    amount_usd = serializers.SerializerMethodField()
    reservation_id = serializers.SerializerMethodField()

    class Meta:
        model = Decision
        fields = [
            "id",
            "source",
            "idempotency_key",
            "fingerprint",
            "project",
            "environment",
            "outcome",
            "evaluated_outcome",
            "mode",
            "enforced",
            "reason_code",
            "amount_usd",
            "reservation_id",
            "request",
            "response",
            "waterfall",
            "context",
            "policy_version",
            "policy_sha256",
            "fail_open",
            "created_at",
        ]

    def get_amount_usd(self, obj) -> str:
        return format_usd(obj.amount_micros)

    def get_reservation_id(self, obj) -> str | None:
        reservation = getattr(obj, "reservation", None)
        return reservation.id if reservation else None


class ReservationSerializer(serializers.ModelSerializer):
    amount_usd = serializers.SerializerMethodField()
    reported_cost_usd = serializers.SerializerMethodField()
    invoiced_cost_usd = serializers.SerializerMethodField()
    overage_usd = serializers.SerializerMethodField()
    allocations = serializers.SerializerMethodField()

    class Meta:
        model = Reservation
        fields = [
            "id",
            "decision",
            "state",
            "amount_usd",
            "reported_cost_usd",
            "invoiced_cost_usd",
            "overage_usd",
            "late",
            "expires_at",
            "usage",
            "external_ref",
            "allocations",
            "created_at",
            "resolved_at",
            "invoiced_at",
        ]

    def get_amount_usd(self, obj) -> str:
        return format_usd(obj.amount_micros)

    def get_reported_cost_usd(self, obj) -> str | None:
        return None if obj.reported_micros is None else format_usd(obj.reported_micros)

    def get_invoiced_cost_usd(self, obj) -> str | None:
        return None if obj.invoiced_micros is None else format_usd(obj.invoiced_micros)

    def get_overage_usd(self, obj) -> str:
        return format_usd(obj.overage_micros)

    def get_allocations(self, obj) -> list[dict]:
        out = []
        for alloc in obj.allocations.select_related("budget_period").order_by("position"):
            out.append(
                {
                    "kind": alloc.kind,
                    "ref": alloc.budget_period.budget_id
                    if alloc.budget_period_id
                    else alloc.credit_grant_id,
                    "period_id": alloc.budget_period_id,
                    "amount_usd": format_usd(alloc.amount_micros),
                    "charged_usd": format_usd(alloc.charged_micros),
                }
            )
        return out


class CommitSerializer(StrictSerializer):
    # Optional only for LLM reservations, which are priced from `usage` with the prices frozen
    # at reservation time (docs/llm-gateway.md); every other commit names its cost.
    actual_cost_usd = UsdField(required=False)
    usage = serializers.DictField(required=False, default=dict, validators=[FreeForm(USAGE_LIMITS)])


class ExtendSerializer(StrictSerializer):
    ttl_seconds = serializers.IntegerField(min_value=1)


class ReconciliationItemSerializer(StrictSerializer):
    reservation_id = serializers.CharField(max_length=32)
    invoiced_cost_usd = UsdField()
    external_ref = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default=""
    )


class ReconciliationSerializer(StrictSerializer):
    items = ReconciliationItemSerializer(many=True, allow_empty=False, max_length=1000)


class ReconciliationItemResultSerializer(serializers.Serializer):
    """One line of a reconciliation answer (``status`` says which fields are present)."""

    reservation_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["invoiced", "error"])
    invoiced_cost_usd = serializers.CharField(required=False)
    adjustment_usd = serializers.CharField(required=False)
    code = serializers.CharField(required=False)
    detail = serializers.CharField(required=False)
    index = serializers.IntegerField(required=False)


class ReconciliationResultSerializer(serializers.Serializer):
    invoiced = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = ReconciliationItemResultSerializer(many=True)


class BudgetScopeSerializer(StrictSerializer):
    project = serializers.SlugField(max_length=63, allow_null=True, required=False, default=None)
    environment = serializers.RegexField(
        r"^[A-Za-z0-9_.-]{1,63}$", allow_null=True, required=False, default=None
    )


def _thresholds_field():
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=1000),
        max_length=10,
        required=False,
        allow_null=True,
        help_text="Percentages of the limit that raise an alert once per period "
        "(default 50, 80, 90, 100).",
    )


def _forecast_field():
    return serializers.BooleanField(
        required=False,
        help_text="Alert when the end-of-month forecast exceeds the limit "
        "(entitlement `forecast_alerts`, else 403 FEATURE_NOT_ENTITLED).",
    )


class BudgetCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    scope = BudgetScopeSerializer(required=False)
    period = serializers.ChoiceField(choices=["monthly", "daily"], default="monthly")
    limit_usd = UsdField()
    alert_thresholds = _thresholds_field()
    forecast_alert = _forecast_field()


class BudgetUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    limit_usd = UsdField(required=False)
    alert_thresholds = _thresholds_field()
    forecast_alert = _forecast_field()


class BudgetSerializer(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()
    alert_thresholds = serializers.SerializerMethodField()
    limit_usd = serializers.SerializerMethodField()
    current_period = serializers.SerializerMethodField()
    reserved_usd = serializers.SerializerMethodField()
    spent_usd = serializers.SerializerMethodField()
    available_usd = serializers.SerializerMethodField()

    class Meta:
        model = Budget
        fields = [
            "id",
            "name",
            "scope",
            "period",
            "limit_usd",
            "current_period",
            "reserved_usd",
            "spent_usd",
            "available_usd",
            "alert_thresholds",
            "forecast_alert",
            "created_at",
            "updated_at",
        ]

    def get_alert_thresholds(self, obj) -> list[int]:
        from enforcement.services.alerts import thresholds_of

        return thresholds_of(obj)

    def _period(self, obj):
        return self.context.get("periods", {}).get(obj.id)

    def get_scope(self, obj) -> dict:
        return {
            "project": obj.project.slug if obj.project_id else None,
            "environment": obj.environment or None,
        }

    def get_limit_usd(self, obj) -> str:
        return format_usd(obj.limit_micros)

    def get_current_period(self, obj) -> dict | None:
        period = self._period(obj)
        if period is None:
            return None
        return {"id": period.id, "start": period.period_start, "end": period.period_end}

    def get_reserved_usd(self, obj) -> str:
        period = self._period(obj)
        return format_usd(period.reserved_micros if period else 0)

    def get_spent_usd(self, obj) -> str:
        period = self._period(obj)
        return format_usd(period.spent_micros if period else 0)

    def get_available_usd(self, obj) -> str:
        period = self._period(obj)
        return format_usd(period.available_micros if period else obj.limit_micros)


class CreditGrantCreateSerializer(StrictSerializer):
    pool = serializers.ChoiceField(choices=["reserved", "emergency"], default="reserved")
    amount_usd = UsdField()
    priority = serializers.IntegerField(default=100, min_value=0, max_value=1_000_000)
    effective_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    def validate_amount_usd(self, value):
        if value <= 0:
            raise serializers.ValidationError("Must be greater than zero.")
        return value


class CreditGrantSerializer(serializers.ModelSerializer):
    amount_usd = serializers.SerializerMethodField()
    remaining_usd = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()

    class Meta:
        model = CreditGrant
        fields = [
            "id",
            "pool",
            "amount_usd",
            "remaining_usd",
            "priority",
            "effective_at",
            "expires_at",
            "voided_at",
            "note",
            "state",
            "created_at",
        ]

    def get_amount_usd(self, obj) -> str:
        return format_usd(obj.amount_micros)

    def get_remaining_usd(self, obj) -> str:
        return format_usd(obj.remaining_micros)

    def get_state(self, obj) -> str:
        from django.utils import timezone

        if obj.voided_at:
            return "void"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        if obj.remaining_micros == 0:
            return "exhausted"
        return "active"
