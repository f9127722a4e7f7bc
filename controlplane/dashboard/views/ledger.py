"""Ledger: chain heads, last verification and checkpoint, verify now, signed export."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from controlplane.audit.exports import ledger_export_response
from controlplane.audit.models import LedgerEntry, LedgerVerification
from controlplane.audit.selectors import (
    ledger_status,
    recent_entries,
    running_verification,
    tenant_chains,
)
from controlplane.audit.services import ledger_verify_request
from controlplane.core.errors import TollgateError
from controlplane.core.ids import ID_RE
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

    def get(self, request):
        chains = tenant_chains(tenant_id=self.tenant.id)
        status = ledger_status(tenant_id=self.tenant.id)
        asked = request.GET.get("verification", "")
        # The verification this browser just started, once a worker finished it.
        report = (
            LedgerVerification.objects.filter(
                tenant_id=self.tenant.id, pk=asked, state=LedgerVerification.State.DONE
            ).first()
            if ID_RE.match(asked)
            else None
        )
        return self.render(
            "dashboard/ledger.html",
            chains=chains,
            chain_labels=chain_labels(chains),
            entries=recent_entries(tenant_id=self.tenant.id),
            report=report,
            running_verification=running_verification(tenant_id=self.tenant.id),
            **status,
        )

    def post(self, request):
        """Verify now: queue a verification of this tenant's chains for a worker (the page
        follows it and shows the result when it is done)."""
        try:
            verification, _ = ledger_verify_request(tenant_id=self.tenant.id, trigger="dashboard")
        except TollgateError as exc:
            messages.error(request, f"{exc.message} {exc.remediation or ''}".strip())
            return redirect("dashboard:ledger")
        return redirect(f"{reverse('dashboard:ledger')}?verification={verification.id}")


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
