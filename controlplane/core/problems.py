"""Build RFC 9457 problem+json bodies and responses (used by DRF and plain Django views)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from django.http import HttpResponse

from controlplane.core.errors import default_remediation

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    """A stable URI naming the problem type; documented in docs/errors.md."""
    return "urn:tollgate:problem:" + code.lower().replace("_", "-")


def problem_body(
    *,
    status: int,
    code: str,
    detail: str,
    remediation: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem document: type, title, status, detail, code, errors, plus our extensions.

    Without an explicit ``remediation`` the code's registered one is used.
    """
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": errors or [],
    }
    remediation = remediation or default_remediation(code)
    if remediation:
        body["remediation"] = remediation
    if request_id:
        body["request_id"] = request_id
    if extra:
        for key, value in extra.items():
            body.setdefault(key, value)
    return body


def problem_response(request=None, **kwargs: Any) -> HttpResponse:
    """A plain Django response carrying a problem document (for non-DRF views and handlers)."""
    headers = kwargs.pop("headers", None) or {}
    if request is not None and "request_id" not in kwargs:
        kwargs["request_id"] = getattr(request, "request_id", None)
    body = problem_body(**kwargs)
    response = HttpResponse(
        json.dumps(body), status=body["status"], content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in headers.items():
        response[name] = value
    return response
