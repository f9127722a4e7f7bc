"""Overview: every budget's current period against its limit, the month's daily spend, signals."""

from __future__ import annotations

from django.utils import timezone

from byok.models import CredentialStatus, ProviderCredential
from controlplane.audit.selectors import ledger_status
from controlplane.dashboard.charts import spend_chart
from controlplane.dashboard.views.base import DashboardView
from enforcement.models import Decision
from enforcement.periods import period_bounds
from enforcement.selectors import (
    approvals_for_approver,
    budget_alert_badges,
    budget_lines,
    daily_spend,
)
from enforcement.selectors.decisions import LIST_FIELDS


class OverviewView(DashboardView):
    section = "overview"
    title = "Overview"

    def get(self, request):
        today = timezone.now().date()
        month_start, month_end = period_bounds("monthly", today)
        spend = daily_spend(tenant=self.tenant, start=month_start, end=month_end)
        lines = budget_lines(tenant=self.tenant, today=today)
        badges = budget_alert_badges(tenant=self.tenant, today=today)
        badge_of = {badge["budget_id"]: badge for badge in badges}
        pending = approvals_for_approver(tenant=self.tenant, user=request.user, status="pending")
        attention = (
            ProviderCredential.objects.for_tenant(self.tenant)
            .exclude(status__in=[CredentialStatus.VALID, CredentialStatus.REVOKED])
            .count()
        )
        recent = list(
            Decision.objects.for_tenant(self.tenant)
            .select_related("project")
            .only(*LIST_FIELDS)
            .order_by("-id")[:8]
        )
        return self.render(
            "dashboard/overview.html",
            rows=[(line, badge_of.get(line.budget.id)) for line in lines],
            alerted=len(badges),
            month_start=month_start,
            today=today,
            month_spend=sum(spend.values()),
            chart=spend_chart(start=month_start, end=month_end, today=today, spend=spend),
            pending_count=pending.count(),
            byok_attention=attention,
            recent=recent,
            **ledger_status(tenant_id=self.tenant.id),
        )
