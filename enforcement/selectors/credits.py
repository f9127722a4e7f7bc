"""Credit grants and reconciliation imports as the dashboard lists them (fixed query counts)."""

from __future__ import annotations

from django.db.models import F, QuerySet

from enforcement.models import CreditGrant, ReconciliationImport, ReconciliationLine


def credit_grants(*, tenant) -> QuerySet[CreditGrant]:
    """The tenant's grants in burn order: reserved before emergency, priority, soonest expiry
    (none last), then age (voided and used-up grants stay listed: they are history)."""
    return CreditGrant.objects.for_tenant(tenant).order_by(
        "-pool",  # "reserved" sorts after "emergency": reversed, reserved comes first
        "priority",
        F("expires_at").asc(nulls_last=True),
        "created_at",
        "id",
    )


def reconciliation_imports(*, tenant, limit: int = 20) -> list[ReconciliationImport]:
    """The tenant's latest bill imports, newest first."""
    return list(ReconciliationImport.objects.for_tenant(tenant).order_by("-created_at")[:limit])


def reconciliation_exceptions(*, imports, limit: int = 100) -> list[ReconciliationLine]:
    """Lines of these imports that did not match (reported, never dropped), in one query."""
    return list(
        ReconciliationLine.objects.filter(import_run__in=[i.pk for i in imports])
        .exclude(outcome="matched")
        .order_by("-import_run__created_at", "id")[:limit]
    )
