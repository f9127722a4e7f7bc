"""Reads of the LLM gateway for the dashboard and the admin."""

from __future__ import annotations

from enforcement.models import LlmCall


def llm_calls(*, tenant, limit: int = 100) -> list[LlmCall]:
    """The tenant's latest LLM calls, newest first."""
    return list(LlmCall.objects.for_tenant(tenant).select_related("reservation")[:limit])


def llm_calls_to_reconcile(*, tenant) -> int:
    """Calls committed as estimated (usage never arrived) that wait for reconciliation."""
    return LlmCall.objects.for_tenant(tenant).filter(needs_reconciliation=True).count()
