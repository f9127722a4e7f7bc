"""The LLM gateway page: the price catalog in use and the tenant's latest LLM calls."""

from __future__ import annotations

from billing.catalog import LLM_GATEWAY
from billing.models import PriceCatalogFetch
from billing.services.prices import current_catalog
from controlplane.dashboard.views.base import DashboardView
from enforcement.selectors.llm import llm_calls, llm_calls_to_reconcile

CALLS_SHOWN = 100


class LlmGatewayView(DashboardView):
    section = "llm"
    title = "LLM gateway"
    feature = LLM_GATEWAY

    def get(self, request):
        return self.render(
            "dashboard/llm.html",
            catalog=current_catalog(),
            fetches=list(PriceCatalogFetch.objects.all()[:5]),
            calls=llm_calls(tenant=self.tenant, limit=CALLS_SHOWN),
            to_reconcile=llm_calls_to_reconcile(tenant=self.tenant),
            shown=CALLS_SHOWN,
        )
