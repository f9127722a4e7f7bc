"""Cursor pagination over time-ordered ids: ``{"results": [...], "next": url|null}``.

Bounded both ways: at most ``max_page_size`` rows (``?limit=``), and a page stops early once its
rows reach ``MAX_PAGE_BYTES`` of JSON (``next`` then continues after the last row sent), so a
page of large rows can never build a response of hundreds of megabytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from controlplane.core.errors import CoreErrorCode, TollgateError

MAX_PAGE_BYTES = 4 * 1024 * 1024
SERIALIZE_CHUNK = 10
_LIMIT_RE = re.compile(r"^[0-9]{1,6}$")  # ASCII digits only: "²".isdigit() is True
_POSITION_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,80}$")


def _invalid_cursor() -> TollgateError:
    return TollgateError(
        CoreErrorCode.VALIDATION_FAILED,
        "The cursor is invalid.",
        remediation="Use the `next` URL from the previous page unchanged.",
        errors=[{"field": "cursor", "message": "Invalid cursor.", "code": "invalid"}],
    )


class IdCursorPagination(CursorPagination):
    """Newest first; ids embed their creation time so ordering by id is stable and indexed."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200

    def decode_cursor(self, request):
        raw = request.query_params.get(self.cursor_query_param)
        if raw is not None:
            if not raw.isascii() or len(raw) > 512:
                raise _invalid_cursor()
            try:  # DRF's decoder skips characters that are not base64; ours refuses them
                base64.b64decode(raw.encode("ascii"), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise _invalid_cursor() from exc
        try:
            cursor = super().decode_cursor(request)
        except Exception as exc:
            raise _invalid_cursor() from exc
        if cursor is None:
            return None
        # Only cursors this server wrote: forward, positioned at a row id. Anything else (a NUL
        # or any text hidden in the base64) would reach the query as a value.
        if cursor.reverse or (
            cursor.position is not None and not _POSITION_RE.match(cursor.position)
        ):
            raise _invalid_cursor()
        return cursor

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _LIMIT_RE.match(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise TollgateError(
                CoreErrorCode.VALIDATION_FAILED,
                f"`limit` must be an integer between 1 and {self.max_page_size}.",
                errors=[{"field": "limit", "message": "Out of range.", "code": "invalid"}],
            )
        return int(raw)

    def serialize_within_budget(self, serialize, budget: int = MAX_PAGE_BYTES) -> list[dict]:
        """Serialise the page a few rows at a time and stop once the rows' JSON reaches the
        byte budget (always at least one row); ``next`` then points after the last row kept."""
        rows: list[dict] = []
        used = 0
        for start in range(0, len(self.page), SERIALIZE_CHUNK):
            for row in serialize(self.page[start : start + SERIALIZE_CHUNK]):
                used += len(json.dumps(row, ensure_ascii=False, default=str)) + 1
                if used > budget and rows:
                    index = len(rows)
                    self.next_position = self._get_position_from_instance(
                        self.page[index], self.ordering
                    )
                    self.page = self.page[:index]
                    self.has_next = True
                    return rows
                rows.append(row)
        return rows

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
            },
        }
