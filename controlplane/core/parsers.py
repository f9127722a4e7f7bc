"""The JSON body parser of every API view: JSON that parses but that we could not store is a 400."""

from __future__ import annotations

from rest_framework.parsers import JSONParser

from controlplane.core.errors import CoreErrorCode, TollgateError
from controlplane.core.jsonlimits import unrepresentable


class StrictJSONParser(JSONParser):
    """DRF's strict JSON parser plus one walk refusing lone surrogates, infinite numbers (``1e999``)
    and integers beyond 64 bits, wherever they are in the body."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        problem = unrepresentable(data)
        if problem is not None:
            field, message = problem
            raise TollgateError(
                CoreErrorCode.INVALID_JSON_VALUE,
                f"The request body holds a value that cannot be processed: {message}",
                remediation="Send valid Unicode text, finite numbers and 64-bit integers.",
                errors=[{"field": field or None, "message": message, "code": "invalid"}],
            )
        return data
