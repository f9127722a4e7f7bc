"""Decisions explorer (filters, keyset pages) and one decision with its full explanation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.utils.http import urlencode

from controlplane.dashboard.forms import DecisionFilterForm
from controlplane.dashboard.views.base import DashboardView
from controlplane.tenancy.models import Project
from enforcement.models import ApprovalRequest, Reservation
from enforcement.selectors import (
    DecisionFilters,
    budget_labels,
    decision_for_page,
    decisions_page,
)

PAGE_SIZE = 50


def _start_of(day) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


class DecisionsView(DashboardView):
    section = "decisions"
    title = "Decisions"

    def get(self, request):
        projects = list(
            Project.objects.for_tenant(self.tenant).order_by("slug").values_list("slug", flat=True)
        )
        form = DecisionFilterForm(request.GET or None, projects=projects)
        filters, before = DecisionFilters(), ""
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            until = data.get("until")
            filters = DecisionFilters(
                outcome=data.get("outcome") or "",
                project=data.get("project") or "",
                environment=data.get("environment") or "",
                source=data.get("source") or "",
                since=_start_of(data.get("since")),
                until=_start_of(until + timedelta(days=1)) if until else None,
            )
            before = data.get("before") or ""
        rows, next_id = decisions_page(
            tenant=self.tenant, filters=filters, before=before, limit=PAGE_SIZE
        )
        next_url = None
        if next_id:
            kept = {k: v for k, v in request.GET.items() if k != "before" and v}
            next_url = "?" + urlencode({**kept, "before": next_id})
        return self.render(
            "dashboard/decisions.html",
            form=form,
            rows=rows,
            next_url=next_url,
            first_page=not before,
        )


class DecisionDetailView(DashboardView):
    section = "decisions"
    title = "Decision"

    def get(self, request, decision_id: str):
        decision = decision_for_page(tenant=self.tenant, decision_id=decision_id)
        if decision is None:
            return self.not_found("decision")
        try:
            approval = decision.approval
        except ApprovalRequest.DoesNotExist:
            approval = None
        try:
            reservation = decision.reservation
        except Reservation.DoesNotExist:
            reservation = None
        response = decision.response or {}
        return self.render(
            "dashboard/decision.html",
            decision=decision,
            response=response,
            approval=approval,
            votes=list(approval.votes.select_related("user")) if approval else [],
            reservation=reservation,
            refs=budget_labels(tenant=self.tenant),
            title=f"Decision {decision.id}",
        )
