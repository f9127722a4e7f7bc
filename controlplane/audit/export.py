"""Signed ledger exports (JSONL or CSV): one builder for the API and the dashboard."""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime

from controlplane.audit import signing
from controlplane.audit.models import LedgerEntry
from controlplane.core.canonical import canonical_json, sha256_hex
from controlplane.core.errors import TollgateError

EXPORT_LIMIT = 100_000
FORMATS = ("jsonl", "csv")
FIELDS = ["id", "chain", "seq", "kind", "payload", "prev_hash", "hash", "recorded_at"]


@dataclass(frozen=True)
class LedgerExport:
    body: str
    content_type: str
    manifest: str  # canonical JSON, sent as the X-Tollgate-Manifest header
    filename: str


def _row(entry: LedgerEntry) -> dict:
    return {
        "id": entry.id,
        "chain": entry.chain,
        "seq": entry.seq,
        "kind": entry.kind,
        "payload": entry.payload,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "recorded_at": entry.recorded_at.isoformat().replace("+00:00", "Z"),
    }


def ledger_export(
    *, tenant, fmt: str, since: datetime | None = None, until: datetime | None = None
) -> LedgerExport:
    """The tenant's entries in [since, until) with a manifest signed by the ledger key."""
    if fmt not in FORMATS:
        raise TollgateError(
            "VALIDATION_FAILED",
            "`format` must be jsonl or csv.",
            errors=[{"field": "format", "message": "Use jsonl or csv.", "code": "invalid"}],
        )
    queryset = LedgerEntry.objects.for_tenant(tenant).order_by("recorded_at", "chain", "seq")
    if since:
        queryset = queryset.filter(recorded_at__gte=since)
    if until:
        queryset = queryset.filter(recorded_at__lt=until)
    if queryset.count() > EXPORT_LIMIT:
        raise TollgateError(
            "EXPORT_TOO_LARGE",
            f"More than {EXPORT_LIMIT} entries in the window.",
            remediation="Narrow the window with since/until and export in parts.",
            status=422,
        )
    rows = [_row(entry) for entry in queryset.iterator(chunk_size=2000)]
    if fmt == "jsonl":
        body = "".join(canonical_json(json.loads(json.dumps(row))) + "\n" for row in rows)
        content_type = "application/x-ndjson"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([canonical_json(row[f]) if f == "payload" else row[f] for f in FIELDS])
        body = buffer.getvalue()
        content_type = "text/csv"
    manifest = {
        "tenant": tenant.id,
        "format": fmt,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "count": len(rows),
        "sha256": sha256_hex(body),
    }
    signed = {
        **manifest,
        "key_id": signing.key_id(),
        "public_key": base64.b64encode(signing.public_key_bytes()).decode(),
        "signature": signing.sign(canonical_json(manifest).encode()),
    }
    return LedgerExport(
        body=body,
        content_type=content_type,
        manifest=canonical_json(signed),
        filename=f"ledger-{tenant.slug}.{fmt}",
    )
