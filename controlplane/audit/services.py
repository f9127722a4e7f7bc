"""Ledger writes: append to a chain (inside the caller's transaction) and sign checkpoints."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.db.models import Q

from controlplane.audit import signing
from controlplane.audit.chain import GENESIS_HASH, control_chain, entry_hash
from controlplane.audit.models import LedgerChain, LedgerCheckpoint, LedgerEntry
from controlplane.core.canonical import canonical_json, sha256_hex
from controlplane.core.clock import db_now
from controlplane.core.jobs import enqueue_on_commit

log = structlog.get_logger(__name__)


def ledger_append(
    *,
    tenant_id: str,
    chain: str,
    kind: str,
    payload: dict[str, Any],
    recorded_at: datetime | None = None,
) -> LedgerEntry:
    """Append one entry to ``chain``; must run inside the transaction that made the change.

    The chain head row is locked, so appends to one chain are serialised and gap-free; callers
    that already hold the lock on the underlying object (a budget period) add no contention.
    ``recorded_at`` defaults to the database clock (pass the transaction's ``db_now()`` when
    the caller already has it). On PostgreSQL an append is two round trips: an upsert that
    creates-or-locks the head and returns it, and one statement that inserts the entry and
    moves the head.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_append must run inside the transaction that made the change")
    if connection.vendor == "postgresql":
        return _append_postgresql(connection, tenant_id, chain, kind, payload, recorded_at)
    LedgerChain.objects.bulk_create(
        [LedgerChain(id=chain, tenant_id=tenant_id)], ignore_conflicts=True
    )
    head = LedgerChain.objects.select_for_update().get(pk=chain)
    return _insert_entry(
        tenant_id, chain, kind, payload, head.head_seq, head.head_hash, recorded_at or db_now()
    )


def ledger_heads_lock(*, tenant_id: str, chains) -> dict[str, tuple[int, str]]:
    """Create-or-lock the heads of these chains, sorted by name: chain -> (head seq, hash).

    For a caller that appends to several chains and builds the entries itself (``next_entry``)
    (the gate's ORM store, the same step as its SQL function).
    """
    wanted = sorted(set(chains))
    LedgerChain.objects.bulk_create(
        [LedgerChain(id=chain, tenant_id=tenant_id) for chain in wanted], ignore_conflicts=True
    )
    rows = LedgerChain.objects.select_for_update().filter(pk__in=wanted).order_by("id")
    return {row.id: (row.head_seq, row.head_hash) for row in rows}


def ledger_entries_write(entries: list[LedgerEntry]) -> None:
    """Insert entries built by ``next_entry`` on locked heads and move the heads to them."""
    LedgerEntry.objects.bulk_create(entries)
    for entry in entries:
        LedgerChain.objects.filter(pk=entry.chain).update(head_seq=entry.seq, head_hash=entry.hash)


def next_entry(tenant_id, chain, kind, payload, head_seq, head_hash, recorded_at) -> LedgerEntry:
    """The (unsaved) entry that follows a chain head, with its hash."""
    seq = head_seq + 1
    return LedgerEntry(
        tenant_id=tenant_id,
        chain=chain,
        seq=seq,
        kind=kind,
        payload=payload,
        prev_hash=head_hash,
        hash=entry_hash(
            tenant_id=tenant_id,
            chain=chain,
            seq=seq,
            kind=kind,
            payload=payload,
            prev_hash=head_hash,
            recorded_at=recorded_at,
        ),
        recorded_at=recorded_at,
    )


def _insert_entry(tenant_id, chain, kind, payload, head_seq, head_hash, recorded_at):
    entry = next_entry(tenant_id, chain, kind, payload, head_seq, head_hash, recorded_at)
    entry.save(force_insert=True)
    LedgerChain.objects.filter(pk=chain).update(head_seq=entry.seq, head_hash=entry.hash)
    return entry


_HEAD_SQL = (
    "INSERT INTO audit_ledgerchain (id, tenant_id, head_seq, head_hash, created_at) "
    "VALUES (%s, %s, 0, %s, now()) "
    "ON CONFLICT (id) DO UPDATE SET head_seq = audit_ledgerchain.head_seq "  # locks the row
    "RETURNING head_seq, head_hash, now()"
)
_APPEND_SQL = (
    "WITH entry AS ("
    " INSERT INTO audit_ledgerentry"
    " (id, tenant_id, chain, seq, kind, payload, prev_hash, hash, recorded_at)"
    " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s) RETURNING seq)"
    " UPDATE audit_ledgerchain SET head_seq = (SELECT seq FROM entry), head_hash = %s"
    " WHERE id = %s"
)


def _append_postgresql(connection, tenant_id, chain, kind, payload, recorded_at) -> LedgerEntry:
    with connection.cursor() as cursor:
        cursor.execute(_HEAD_SQL, [chain, tenant_id, GENESIS_HASH])
        head_seq, head_hash, now = cursor.fetchone()
        entry = next_entry(tenant_id, chain, kind, payload, head_seq, head_hash, recorded_at or now)
        cursor.execute(
            _APPEND_SQL,
            [
                entry.id,
                tenant_id,
                chain,
                entry.seq,
                kind,
                json.dumps(payload),
                head_hash,
                entry.hash,
                entry.recorded_at,
                entry.hash,
                chain,
            ],
        )
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


def ledger_append_control(*, tenant_id: str, kind: str, payload: dict[str, Any]) -> LedgerEntry:
    """Append to the tenant's control chain (keys, policies, approvals, grants, credentials)."""
    return ledger_append(
        tenant_id=tenant_id, chain=control_chain(tenant_id), kind=kind, payload=payload
    )


def checkpoint_message(heads: dict[str, list]) -> bytes:
    return canonical_json({"heads": heads}).encode("utf-8")


@transaction.atomic
def checkpoint_create() -> LedgerCheckpoint:
    """Sign every chain head as it stands now (a consistent snapshot inside one transaction)."""
    heads = {
        chain_id: [seq, head_hash]
        for chain_id, seq, head_hash in LedgerChain.objects.order_by("id").values_list(
            "id", "head_seq", "head_hash"
        )
        if seq > 0
    }
    message = checkpoint_message(heads)
    latest = LedgerCheckpoint.objects.order_by("-created_at").first()
    if latest is not None and latest.heads_sha256 == sha256_hex(message):
        return latest  # nothing moved since the last checkpoint
    return LedgerCheckpoint.objects.create(
        heads=heads,
        heads_sha256=sha256_hex(message),
        key_id=signing.key_id(),
        signature=signing.sign(message),
        created_at=db_now(),
    )


def _store_report(verification, report) -> None:
    verification.ok = report.ok
    verification.chains_checked = report.chains_checked
    verification.entries_checked = report.entries_checked
    verification.checkpoints_checked = report.checkpoints_checked
    verification.problems = report.to_dict()["problems"][:200]
    verification.problems_truncated = report.problems_truncated or len(report.problems) > 200


def ledger_verify_record(*, trigger: str, tenant_id: str | None = None):
    """Verify the ledger and keep the outcome, so operators see the last result at a glance."""
    from controlplane.audit.models import LedgerVerification
    from controlplane.audit.verify import verify_ledger

    started = db_now()
    report = verify_ledger(tenant_id=tenant_id)
    verification = LedgerVerification(
        tenant_id=tenant_id or "",
        trigger=trigger,
        state=LedgerVerification.State.DONE,
        created_at=started,
        started_at=started,
        finished_at=db_now(),
    )
    _store_report(verification, report)
    verification.save(force_insert=True)
    return report


def _endpoint_payload(endpoint) -> dict[str, Any]:
    # Never the signing secret: the ledger is exported and read widely.
    return {
        "endpoint": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types or []),
        "active": endpoint.active,
    }


@transaction.atomic
def webhook_endpoint_save(*, endpoint):
    """Create or change a tenant's webhook endpoint, with its ledger entry."""
    from controlplane.audit.models import WebhookEndpoint

    created = endpoint._state.adding or not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    endpoint.save()
    ledger_append_control(
        tenant_id=endpoint.tenant_id,
        kind="webhook_endpoint.created" if created else "webhook_endpoint.changed",
        payload=_endpoint_payload(endpoint),
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint) -> None:
    """Stop delivering to an endpoint (its delivery records go with it; the events stay)."""
    payload = _endpoint_payload(endpoint)
    endpoint.delete()
    ledger_append_control(
        tenant_id=endpoint.tenant_id,
        kind="webhook_endpoint.deleted",
        payload=payload,
    )


# How long a running verification may go without finishing before another worker takes it over
# (its worker died: Celery redelivers the task, acks_late).
VERIFICATION_STALE_SECONDS = 3600


def ledger_verify_request(*, tenant_id: str, trigger: str = "api"):
    """Queue a verification of one tenant's ledger ("" = every tenant) for a worker; the one
    already queued or running if any. Returns (verification, created).

    The one way to start a verification from a request (API, dashboard, admin): nothing is
    verified in the request. ``audit.ledger_verify_run_task`` is enqueued after commit; if the
    queue refuses it, the row is marked failed and a 503 ``SERVICE_UNAVAILABLE`` is raised.
    """
    from controlplane.audit.models import LedgerVerification
    from controlplane.audit.tasks import ledger_verify_run_task

    active = LedgerVerification.objects.filter(
        tenant_id=tenant_id, state__in=["queued", "running"]
    ).first()
    if active is not None:
        return active, False
    try:
        with transaction.atomic():
            verification = LedgerVerification.objects.create(
                tenant_id=tenant_id,
                trigger=trigger,
                state=LedgerVerification.State.QUEUED,
                created_at=db_now(),
            )
            enqueue_on_commit(
                ledger_verify_run_task,
                verification.id,
                on_failure=lambda: ledger_verify_abandon(verification_id=verification.id),
            )
    except IntegrityError:  # a concurrent request queued one first (one active per tenant)
        return (
            LedgerVerification.objects.get(tenant_id=tenant_id, state__in=["queued", "running"]),
            False,
        )
    return verification, True


def ledger_verify_abandon(*, verification_id: str) -> None:
    """A queued verification no worker will run (the queue refused it): mark it failed."""
    from controlplane.audit.models import LedgerVerification

    LedgerVerification.objects.filter(pk=verification_id, state="queued").update(
        state="failed", finished_at=db_now()
    )


def ledger_verify_run(*, verification_id: str) -> bool:
    """Run a queued verification in a worker; False when another worker has it (or it is done).

    Claimed with a conditional UPDATE, so two workers (a redelivered task) never both run it;
    a ``running`` row older than VERIFICATION_STALE_SECONDS is taken over.
    """
    from controlplane.audit.models import LedgerVerification
    from controlplane.audit.verify import verify_ledger

    now = db_now()
    stale = now - timedelta(seconds=VERIFICATION_STALE_SECONDS)
    claimed = (
        LedgerVerification.objects.filter(pk=verification_id)
        .filter(Q(state="queued") | Q(state="running", started_at__lt=stale))
        .update(state="running", started_at=now)
    )
    if claimed != 1:
        return False
    verification = LedgerVerification.objects.get(pk=verification_id)
    try:
        report = verify_ledger(tenant_id=verification.tenant_id or None)
    except Exception:
        LedgerVerification.objects.filter(pk=verification_id).update(
            state="failed", finished_at=db_now()
        )
        log.exception("ledger_verification_failed", verification=verification_id)
        raise
    _store_report(verification, report)
    verification.state = LedgerVerification.State.DONE
    verification.finished_at = db_now()
    verification.save()
    log.info("ledger_verified", verification=verification_id, ok=report.ok)
    return True


__all__ = [
    "GENESIS_HASH",
    "checkpoint_create",
    "ledger_append",
    "ledger_append_control",
    "ledger_verify_abandon",
    "ledger_verify_record",
    "ledger_verify_request",
    "ledger_verify_run",
    "webhook_endpoint_delete",
    "webhook_endpoint_save",
]
