"""Ledger reads used by the admin, the API and the dashboard."""

from __future__ import annotations

from django.db.models import Q

from controlplane.audit.models import LedgerChain, LedgerCheckpoint, LedgerEntry, LedgerVerification


def ledger_status(*, tenant_id: str | None = None) -> dict:
    """Last signed checkpoint and last finished verification (cheap: two indexed reads).

    With a tenant, the last verification that covered it (its own, or one of every tenant).
    Queued, running and failed verification jobs are not results.
    """
    verifications = LedgerVerification.objects.filter(state=LedgerVerification.State.DONE).order_by(
        "-created_at"
    )
    if tenant_id is not None:
        verifications = verifications.filter(tenant_id__in=[tenant_id, ""])
    return {
        "last_checkpoint": LedgerCheckpoint.objects.order_by("-created_at").first(),
        "last_verification": verifications.first(),
    }


def running_verification(*, tenant_id: str = "") -> LedgerVerification | None:
    """The verification job queued or running for this tenant ("" for every tenant)."""
    return LedgerVerification.objects.filter(
        tenant_id=tenant_id,
        state__in=[LedgerVerification.State.QUEUED, LedgerVerification.State.RUNNING],
    ).first()


def tenant_chains(*, tenant_id: str) -> list[LedgerChain]:
    """The tenant's chains with their heads (control chain first, then budget periods)."""
    return sorted(
        LedgerChain.objects.filter(tenant_id=tenant_id),
        key=lambda chain: (not chain.id.startswith("control:"), chain.id),
    )


def recent_entries(
    *, tenant_id: str, limit: int = 20, kind_prefixes: tuple[str, ...] = ()
) -> list[LedgerEntry]:
    """The tenant's latest ledger entries, newest first (only kinds starting with one of
    ``kind_prefixes`` when given, e.g. ``("scim", "approver_group.")``)."""
    entries = LedgerEntry.objects.filter(tenant_id=tenant_id)
    if kind_prefixes:
        kinds = Q()
        for prefix in kind_prefixes:
            kinds |= Q(kind__startswith=prefix)
        entries = entries.filter(kinds)
    return list(entries.order_by("-recorded_at", "-seq")[:limit])
