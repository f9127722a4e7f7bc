"""The decisions explorer: filtered, newest first, keyset-paged (no COUNT, no OFFSET)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from enforcement.models import Decision

# The list never loads the JSON columns (request, response, snapshot...): a page stays small
# however large each decision is.
LIST_FIELDS = (
    "id",
    "tenant_id",
    "source",
    "project__slug",
    "environment",
    "outcome",
    "mode",
    "reason_code",
    "amount_micros",
    "policy_version",
    "created_at",
)


@dataclass(frozen=True)
class DecisionFilters:
    outcome: str = ""
    project: str = ""  # slug
    environment: str = ""
    source: str = ""
    since: datetime | None = None
    until: datetime | None = None


def decision_list(*, queryset, filters: DecisionFilters):
    """``queryset`` (already scoped to the caller) narrowed by the filters: the one filter of
    the API list and the dashboard explorer."""
    if filters.outcome:
        queryset = queryset.filter(outcome=filters.outcome)
    if filters.project:
        queryset = queryset.filter(project__slug=filters.project)
    if filters.environment:
        queryset = queryset.filter(environment=filters.environment)
    if filters.source:
        queryset = queryset.filter(source=filters.source)
    if filters.since:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(created_at__lt=filters.until)
    return queryset


def decisions_page(
    *, tenant, filters: DecisionFilters, before: str = "", limit: int = 50
) -> tuple[list[Decision], str | None]:
    """One page of decisions older than ``before`` (an id); returns (page, next cursor)."""
    queryset = decision_list(queryset=Decision.objects.for_tenant(tenant), filters=filters)
    if before:
        queryset = queryset.filter(id__lt=before)
    rows = list(queryset.select_related("project").only(*LIST_FIELDS).order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def decision_for_page(*, tenant, decision_id: str) -> Decision | None:
    """One decision with what its page shows: project, reservation, approval."""
    return (
        Decision.objects.for_tenant(tenant)
        .select_related("project", "reservation", "approval")
        .filter(pk=decision_id)
        .first()
    )
