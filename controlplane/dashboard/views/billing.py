"""What billing features add to the dashboard: budget alerts, credit grants, bill imports.

Each page (or part of one) is a plan entitlement, checked by ``DashboardView.feature`` /
``require_feature`` (billing's one entitlement check).
"""

from __future__ import annotations

from billing.catalog import CREDIT_GRANTS, FORECAST_ALERTS, INVOICE_RECONCILIATION
from billing.entitlements import enabled
from controlplane.dashboard.views.base import DashboardView
from enforcement.models import BudgetAlert
from enforcement.selectors import (
    budget_alerts,
    credit_grants,
    reconciliation_exceptions,
    reconciliation_imports,
)

ALERTS_SHOWN = 100
GRANTS_SHOWN = 200


class AlertsView(DashboardView):
    """Budget alerts fired this period (``?all=1``: every period); threshold alerts come with
    every plan, forecast alerts with ``forecast_alerts`` (``?kind=forecast`` needs it)."""

    section = "alerts"
    title = "Budget alerts"

    def get(self, request):
        kind = request.GET.get("kind")
        kind = kind if kind in BudgetAlert.Kind.values else None
        if kind == BudgetAlert.Kind.FORECAST:
            self.require_feature(FORECAST_ALERTS)
        forecasts = enabled(self.tenant, FORECAST_ALERTS)
        everything = request.GET.get("all") == "1"
        alerts = budget_alerts(tenant=self.tenant, kind=kind, current_only=not everything)
        if not forecasts:
            alerts = alerts.exclude(kind=BudgetAlert.Kind.FORECAST)
        return self.render(
            "dashboard/alerts.html",
            alerts=list(alerts[:ALERTS_SHOWN]),
            shown=ALERTS_SHOWN,
            kind=kind,
            everything=everything,
            forecasts=forecasts,
        )


class CreditsView(DashboardView):
    section = "credits"
    title = "Credit grants"
    feature = CREDIT_GRANTS

    def get(self, request):
        grants = list(credit_grants(tenant=self.tenant)[:GRANTS_SHOWN])
        return self.render("dashboard/credits.html", grants=grants, shown=GRANTS_SHOWN)


class ReconciliationView(DashboardView):
    section = "reconciliation"
    title = "Invoice reconciliation"
    feature = INVOICE_RECONCILIATION

    def get(self, request):
        imports = reconciliation_imports(tenant=self.tenant)
        return self.render(
            "dashboard/reconciliation.html",
            imports=imports,
            exceptions=reconciliation_exceptions(imports=imports),
        )
