"""Budget alerts as the API lists them and the dashboard shows them (badges)."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from billing import entitlements
from billing.catalog import FORECAST_ALERTS
from controlplane.core.clock import db_now
from enforcement.models import BudgetAlert


def budget_alerts(
    *,
    tenant,
    budget_id: str | None = None,
    kind: str | None = None,
    current_only: bool = False,
    today: date | None = None,
) -> QuerySet[BudgetAlert]:
    """The tenant's fired budget alerts, newest first (API list and dashboard). ``current_only``
    keeps the periods containing ``today`` (default: the database's date)."""
    alerts = BudgetAlert.objects.for_tenant(tenant).select_related(
        "budget__project", "budget_period"
    )
    if budget_id:
        alerts = alerts.filter(budget_id=budget_id)
    if kind:
        alerts = alerts.filter(kind=kind)
    if current_only:
        today = today or db_now().date()
        alerts = alerts.filter(
            budget_period__period_start__lte=today, budget_period__period_end__gt=today
        )
    return alerts.order_by("-fired_at", "id")


def budget_alert_badges(*, tenant, today: date | None = None) -> list[dict]:
    """Dashboard badges: per budget, the highest threshold reached this period and whether
    the forecast is over the limit (one read; the plan is read only when a forecast alert is
    there: a plan without ``forecast_alerts`` shows none, even those fired before a downgrade)."""
    badges: dict[str, dict] = {}
    forecasts_shown: bool | None = None
    for alert in budget_alerts(tenant=tenant, current_only=True, today=today):
        if alert.kind == BudgetAlert.Kind.FORECAST:
            if forecasts_shown is None:
                forecasts_shown = entitlements.enabled(tenant, FORECAST_ALERTS)
            if not forecasts_shown:
                continue
        badge = badges.setdefault(
            alert.budget_id,
            {
                "budget_id": alert.budget_id,
                "budget_name": str(alert.budget),
                "threshold_percent": None,
                "forecast_over_limit": False,
                "fired_at": alert.fired_at,
            },
        )
        if alert.kind == BudgetAlert.Kind.FORECAST:
            badge["forecast_over_limit"] = True
        elif (badge["threshold_percent"] or 0) < alert.threshold_percent:
            badge["threshold_percent"] = alert.threshold_percent
        badge["fired_at"] = max(badge["fired_at"], alert.fired_at)
    return sorted(badges.values(), key=lambda b: -(b["threshold_percent"] or 0))
