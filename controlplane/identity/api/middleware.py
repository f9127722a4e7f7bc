"""SCIM error bodies for errors produced before a SCIM view runs (body too large, a NUL in the
URL, database unavailable): RFC 7644 section 3.12 wants a SCIM Error for every failure, and the
project's middleware answers problem+json. Touches ``/scim/v2/`` responses only."""

from __future__ import annotations

import json

from django.http import HttpResponse

from controlplane.identity.scim.errors import ScimError

SCIM_PREFIX = "/scim/v2/"
SCIM_CONTENT_TYPE = "application/scim+json"


class ScimErrorBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(SCIM_PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith(SCIM_CONTENT_TYPE):
            return response
        try:
            detail = json.loads(response.content).get("detail") or ""
        except (ValueError, AttributeError):
            detail = ""
        error = ScimError(response.status_code, detail or response.reason_phrase)
        translated = HttpResponse(
            json.dumps(error.to_dict()), status=response.status_code, content_type=SCIM_CONTENT_TYPE
        )
        for header in ("Retry-After", "WWW-Authenticate", "Allow", "X-Request-ID"):
            if header in response:
                translated[header] = response[header]
        return translated
