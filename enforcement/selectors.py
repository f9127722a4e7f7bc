"""Reads used by the API, admin and dashboard."""

from __future__ import annotations

from django.db.models import QuerySet

from controlplane.core.clock import db_now
from enforcement.models import ApprovalRequest, BudgetAlert
from enforcement.services.approvals import authority_error


def approvals_for_approver(*, tenant, user, status: str) -> QuerySet[ApprovalRequest]:
    """Requests of ``status`` this user may act on (pending: may vote now and has not voted).

    Routing is a JSON document (roles and group names), so authority is evaluated in Python
    over the tenant's requests of that status; pending requests are few (the expiry sweep
    bounds them) and the result is handed back as a queryset so it paginates like any other.
    """
    candidates = ApprovalRequest.objects.for_tenant(tenant).filter(state=status)
    if status == ApprovalRequest.State.PENDING:
        candidates = candidates.exclude(votes__user_id=user.pk)
    allowed = []
    for approval in candidates.only(
        "id", "tenant_id", "routing", "requester", "requester_user_id", "state"
    ):
        error = authority_error(approval, user)
        if error is None or (
            status != ApprovalRequest.State.PENDING and error.code == "APPROVER_IS_REQUESTER"
        ):
            allowed.append(approval.id)
    return ApprovalRequest.objects.for_tenant(tenant).filter(pk__in=allowed)


def budget_alerts(
    *, tenant, budget_id: str | None = None, kind: str | None = None, current_only: bool = False
) -> QuerySet[BudgetAlert]:
    """The tenant's fired budget alerts, newest first (API list and dashboard)."""
    alerts = BudgetAlert.objects.for_tenant(tenant).select_related("budget", "budget_period")
    if budget_id:
        alerts = alerts.filter(budget_id=budget_id)
    if kind:
        alerts = alerts.filter(kind=kind)
    if current_only:
        today = db_now().date()
        alerts = alerts.filter(
            budget_period__period_start__lte=today, budget_period__period_end__gt=today
        )
    return alerts.order_by("-fired_at", "id")


def budget_alert_badges(*, tenant) -> list[dict]:
    """Dashboard badges: per budget, the highest threshold reached this period and whether
    the forecast is over the limit (one read)."""
    badges: dict[str, dict] = {}
    for alert in budget_alerts(tenant=tenant, current_only=True):
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
