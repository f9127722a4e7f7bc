"""Budget alerts: what fired, for integrations and dashboards."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from controlplane.core.ids import ID_RE
from controlplane.core.money import format_usd
from controlplane.core.params import choice_param, pattern_param
from controlplane.tenancy.api.views_base import Confine, TenantScopedAPIView
from enforcement import scopes, selectors
from enforcement.models import BudgetAlert


class BudgetAlertSerializer(serializers.ModelSerializer):
    budget_name = serializers.SerializerMethodField()
    period_start = serializers.DateField(source="budget_period.period_start")
    period_end = serializers.DateField(source="budget_period.period_end")
    spent_usd = serializers.SerializerMethodField()
    limit_usd = serializers.SerializerMethodField()
    forecast_usd = serializers.SerializerMethodField()

    class Meta:
        model = BudgetAlert
        fields = [
            "id",
            "budget",
            "budget_name",
            "kind",
            "threshold_percent",
            "period_start",
            "period_end",
            "spent_usd",
            "limit_usd",
            "forecast_usd",
            "fired_at",
        ]

    def get_budget_name(self, obj) -> str:
        return str(obj.budget)

    def get_spent_usd(self, obj) -> str:
        return format_usd(obj.spent_micros)

    def get_limit_usd(self, obj) -> str:
        return format_usd(obj.limit_micros)

    def get_forecast_usd(self, obj) -> str | None:
        return None if obj.forecast_micros is None else format_usd(obj.forecast_micros)


class BudgetAlertListView(TenantScopedAPIView):
    model = BudgetAlert
    required_scopes = {"GET": scopes.BUDGETS_READ}
    # A bound key sees the alerts of the budgets inside its binding (as it sees those budgets).
    bound_keys = {"GET": Confine(project="budget__project", environment="budget__environment")}
    serializer_class = BudgetAlertSerializer

    @extend_schema(
        operation_id="budget_alerts_list",
        responses=BudgetAlertSerializer(many=True),
        parameters=[
            OpenApiParameter("budget", str, description="Only this budget's alerts."),
            OpenApiParameter("kind", str, enum=["threshold", "forecast"]),
            OpenApiParameter("current", bool, description="Only the current periods."),
            OpenApiParameter("limit", int, description="1..200 (default 50)"),
        ],
        description="Alerts fired once per budget period: `threshold` when spend reached "
        "`threshold_percent` of the limit, `forecast` when the end-of-month forecast is above "
        "it. Each was also sent as a `budget.threshold_crossed` / "
        "`budget.forecast_exceeds_limit` webhook.",
    )
    def get(self, request):
        params = request.query_params
        current = choice_param(
            params, "current", ("true", "false", "1", "0", "yes", "no"), default="false"
        )
        alerts = selectors.budget_alerts(
            tenant=self.tenant,
            budget_id=pattern_param(params, "budget", ID_RE, "a budget id"),
            kind=choice_param(params, "kind", BudgetAlert.Kind.values),
            current_only=current in ("true", "1", "yes"),
        )
        return self.page_response(
            self.confined(alerts), lambda rows: BudgetAlertSerializer(rows, many=True).data
        )
