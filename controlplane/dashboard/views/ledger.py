"""Ledger: chain heads, last verification and checkpoint, verify now, signed export."""

from __future__ import annotations

from controlplane.audit.exports import ledger_export_response
from controlplane.audit.models import LedgerEntry
from controlplane.audit.selectors import ledger_status, recent_entries, tenant_chains
from controlplane.audit.services import ledger_verify_record
from controlplane.core.params import choice_param
from controlplane.dashboard.views.base import DashboardView
from enforcement.models import BudgetPeriod


def chain_labels(chains) -> dict[str, str]:
    """ "bp:<period id>" -> "Payments prod, Dec 2026" (one query); the control chain by name."""
    period_ids = [chain.id.removeprefix("bp:") for chain in chains if chain.id.startswith("bp:")]
    labels = {chain.id: "Control (keys, policies, approvals, grants)" for chain in chains}
    periods = BudgetPeriod.objects.filter(pk__in=period_ids).select_related("budget__project")
    for period in periods:
        budget = period.budget
        name = budget.name or budget.scope_label
        labels[f"bp:{period.pk}"] = (
            f"{name}, {period.period_start:%b %-d %Y}"
            if (budget.period == "daily")
            else f"{name}, {period.period_start:%b %Y}"
        )
    return labels


class LedgerView(DashboardView):
    section = "ledger"
    title = "Ledger"
    manage_methods = ("POST",)

    def _page(self, report=None, status=200):
        chains = tenant_chains(tenant_id=self.tenant.id)
        return self.render(
            "dashboard/ledger.html",
            status=status,
            chains=chains,
            chain_labels=chain_labels(chains),
            entries=recent_entries(tenant_id=self.tenant.id),
            report=report,
            **ledger_status(tenant_id=self.tenant.id),
        )

    def get(self, request):
        return self._page()

    def post(self, request):
        """Verify now: recompute every chain of this tenant and record the outcome."""
        report = ledger_verify_record(trigger="dashboard", tenant_id=self.tenant.id)
        return self._page(report=report)


class LedgerExportView(DashboardView):
    section = "ledger"
    title = "Ledger"
    manage_methods = ("GET",)

    def get(self, request):
        fmt = choice_param(request.GET, "format", ("jsonl", "csv"), default="jsonl")
        return ledger_export_response(
            LedgerEntry.objects.for_tenant(self.tenant),
            tenant=self.tenant,
            fmt=fmt,
            since=None,
            until=None,
        )
