"""The JSON parser of every API endpoint: refuses deep bodies before parsing them."""

from __future__ import annotations

import io

from rest_framework.parsers import JSONParser

from controlplane.core.bodies import check_json_depth


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser behind the ``MAX_BODY_DEPTH`` check (400 ``BODY_TOO_DEEP``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        check_json_depth(raw)
        return super().parse(io.BytesIO(raw), media_type, parser_context)
