"""Cursor pagination over time-ordered ids: ``{"results": [...], "next": url|null}``."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from controlplane.core.errors import CoreErrorCode, TollgateError


class IdCursorPagination(CursorPagination):
    """Newest first; ids embed their creation time so ordering by id is stable and indexed."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except Exception as exc:
            raise TollgateError(
                CoreErrorCode.VALIDATION_FAILED,
                "The cursor is invalid.",
                remediation="Use the `next` URL from the previous page unchanged.",
                errors=[{"field": "cursor", "message": "Invalid cursor.", "code": "invalid"}],
            ) from exc

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise TollgateError(
                CoreErrorCode.VALIDATION_FAILED,
                f"`limit` must be an integer between 1 and {self.max_page_size}.",
                errors=[{"field": "limit", "message": "Out of range.", "code": "invalid"}],
            )
        return int(raw)

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
