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

    def page_within_budget(
        self,
        queryset,
        request,
        view,
        serialize,
        budget: int = MAX_PAGE_BYTES,
        chunk_rows: int = SERIALIZE_CHUNK,
    ):
        """One page, read from the database and serialised ``chunk_rows`` rows at a time: it
        ends after ``limit`` rows or once the rows' JSON reaches ``budget`` bytes (always at
        least one row), so neither the rows held nor the response grow with the size of the
        rows. Lists whose rows have a small bounded size and prefetch related rows pass a
        whole page as ``chunk_rows``, so a page costs a fixed number of queries."""
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.cursor = self.decode_cursor(request)
        offset, position = (self.cursor.offset, self.cursor.position) if self.cursor else (0, None)
        field = self.ordering[0].lstrip("-")
        queryset = queryset.order_by(*self.ordering)
        if position is not None:
            after = "lt" if self.ordering[0].startswith("-") else "gt"
            queryset = queryset.filter(**{f"{field}__{after}": position})
        self.page, rows, used, start = [], [], 0, offset
        self.has_next, self.next_position = False, None
        self.has_previous, self.previous_position = position is not None or offset > 0, position
        while len(self.page) < self.page_size:
            chunk = list(queryset[start : start + min(chunk_rows, self.page_size - len(rows))])
            start += len(chunk)
            for instance, row in zip(chunk, serialize(chunk), strict=True):
                used += len(json.dumps(row, ensure_ascii=False, default=str)) + 1
                if used > budget and rows:
                    self.has_next = True
                    self.next_position = self._get_position_from_instance(instance, self.ordering)
                    return rows
                self.page.append(instance)
                rows.append(row)
            if not chunk:
                return rows
        self.has_next = queryset[start : start + 1].exists()
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
