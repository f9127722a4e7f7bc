"""Signed ledger exports in constant memory: one builder for the API and the dashboard.

The manifest (count, sha256 of the body) travels in a response header, so it must be known
before the first byte is sent. One read of the window, inside one transaction (one snapshot),
writes the body to a spooled temporary file (memory up to SPOOL_MEMORY_BYTES, then disk) while
hashing and counting it; the response then streams that file in chunks. Memory stays flat
whatever the size of the export; disk use is the size of the export, for the time of the
download.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import tempfile
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.http import StreamingHttpResponse
from rest_framework import serializers

from controlplane.audit import signing
from controlplane.audit.errors import AuditErrorCode
from controlplane.core.canonical import canonical_json
from controlplane.core.errors import TollgateError

COLUMNS = ("id", "chain", "seq", "kind", "payload", "prev_hash", "hash", "recorded_at")
SPOOL_MEMORY_BYTES = 1024 * 1024
READ_CHUNK_ROWS = 2000
SEND_CHUNK_BYTES = 64 * 1024
_TIME = serializers.DateTimeField()  # the same text the ledger list API shows


class ExportTooLarge(TollgateError):
    """422 ``EXPORT_TOO_LARGE``: more entries in the window than LEDGER_EXPORT_MAX_ENTRIES."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            AuditErrorCode.EXPORT_TOO_LARGE,
            f"More than {limit} entries in the window.",
            remediation="Narrow the window with since/until and export in parts.",
            status=422,
        )
        self.limit = limit


def _lines(rows, fmt: str):
    """Encoded body pieces for rows of ``COLUMNS`` values (CSV: a header first)."""
    if fmt == "jsonl":
        for row in rows:
            record = dict(zip(COLUMNS, row, strict=True))
            record["recorded_at"] = _TIME.to_representation(record["recorded_at"])
            yield (canonical_json(record) + "\n").encode("utf-8")
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for index, row in enumerate(rows):
        record = list(row)
        record[4] = canonical_json(record[4])
        record[7] = _TIME.to_representation(record[7])
        writer.writerow(record)
        if index % 256 == 255:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _spool(queryset, fmt: str, limit: int):
    """(file positioned at 0, entry count, sha256 hex) of the export body."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    digest = hashlib.sha256()
    count = 0

    def counted(rows):
        nonlocal count
        for row in rows:
            count += 1
            if count > limit:
                raise ExportTooLarge(limit)
            yield row

    try:
        with transaction.atomic():  # one snapshot for the whole window
            rows = (
                queryset.order_by("recorded_at", "chain", "seq")
                .values_list(*COLUMNS)
                .iterator(chunk_size=READ_CHUNK_ROWS)
            )
            try:
                for piece in _lines(counted(rows), fmt):
                    digest.update(piece)
                    spool.write(piece)
            finally:
                # Close the server-side cursor while its transaction is alive: left to the
                # garbage collector (after EXPORT_TOO_LARGE), its CLOSE would run after the
                # rollback and fail the connection's next statement.
                rows.close()
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, count, digest.hexdigest()


def _send(spool):
    try:
        while True:
            piece = spool.read(SEND_CHUNK_BYTES)
            if not piece:
                return
            yield piece
    finally:
        spool.close()


def ledger_export_response(
    queryset, *, tenant, fmt: str, since: datetime | None, until: datetime | None
) -> StreamingHttpResponse:
    """The streamed export of ``queryset`` with its signed manifest header."""
    limit = settings.LEDGER_EXPORT_MAX_ENTRIES
    spool, count, sha256 = _spool(queryset, fmt, limit)
    manifest = {
        "tenant": tenant.id,
        "format": fmt,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "count": count,
        "sha256": sha256,
    }
    signed = {
        **manifest,
        "key_id": signing.key_id(),
        "public_key": base64.b64encode(signing.public_key_bytes()).decode(),
        "signature": signing.sign(canonical_json(manifest).encode()),
    }
    response = StreamingHttpResponse(
        _send(spool), content_type="application/x-ndjson" if fmt == "jsonl" else "text/csv"
    )
    response["X-Tollgate-Manifest"] = canonical_json(signed)
    response["Content-Disposition"] = f'attachment; filename="ledger-{tenant.slug}.{fmt}"'
    return response
