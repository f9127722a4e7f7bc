"""Errors in each provider's own shape (the SDKs parse these), not problem+json.

OpenAI: ``{"error": {"message", "type", "param", "code"}}``; Anthropic:
``{"type": "error", "error": {"type", "message"}}``. Both carry Tollgate's stable ``code``
and its ``remediation`` as extra fields (the SDKs keep unknown fields), so a client sees the
same codes as on /api/v1 (docs/decisions/0014-llm-proxy-provider-error-shapes.md).
"""

from __future__ import annotations

import json

from controlplane.core.errors import TollgateError, default_remediation

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    424: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    424: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_body(
    fmt: str, *, status: int, code: str, message: str, remediation: str = "", extra=None
) -> bytes:
    details = {"code": code, "remediation": remediation or default_remediation(code) or ""}
    details.update(extra or {})
    if fmt == "anthropic":
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message, **details}}
    else:
        kind = _OPENAI_TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        body = {"error": {"message": message, "type": kind, "param": None, **details}}
    return json.dumps(body, separators=(",", ":")).encode()


def from_tollgate_error(fmt: str, exc: TollgateError) -> tuple[int, bytes, dict[str, str]]:
    extra = {k: v for k, v in (exc.extra or {}).items() if k not in ("code", "message", "type")}
    if exc.errors:
        extra["errors"] = exc.errors
        field = exc.errors[0].get("field") if isinstance(exc.errors[0], dict) else None
        if field and fmt != "anthropic":
            extra["param"] = field
    body = error_body(
        fmt,
        status=exc.status_code,
        code=str(exc.code),
        message=exc.message,
        remediation=exc.remediation or "",
        extra=extra,
    )
    return exc.status_code, body, dict(exc.headers or {})
