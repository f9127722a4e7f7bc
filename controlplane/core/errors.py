"""One error type for the whole product: a stable code, a message, a remediation, an HTTP status."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from rest_framework.exceptions import APIException


class CoreErrorCode(StrEnum):
    """Codes raised by the platform layer itself (each app keeps its own enum beside this one)."""

    VALIDATION_FAILED = "VALIDATION_FAILED"
    MALFORMED_JSON = "MALFORMED_JSON"
    INVALID_JSON_VALUE = "INVALID_JSON_VALUE"
    INVALID_VALUE = "INVALID_VALUE"
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    BODY_TOO_DEEP = "BODY_TOO_DEEP"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RATE_LIMITED = "RATE_LIMITED"
    CONFLICT = "CONFLICT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    INTERNAL_ERROR = "INTERNAL_ERROR"


# code -> the default remediation of that code. Every app registers its enum here at import
# (``register_error_codes`` in its errors.py); a test walks the registry so that no code can
# leave without a hint. A raise may still pass a more specific remediation.
_REMEDIATIONS: dict[str, str] = {}


def register_error_codes(codes: type[StrEnum], remediations: dict[str, str]) -> None:
    """Register an app's codes with one default remediation each (all of them, or it fails)."""
    missing = sorted(str(code) for code in codes if not remediations.get(code))
    if missing:
        raise ValueError(f"{codes.__name__}: no remediation for {', '.join(missing)}")
    for code in codes:
        _REMEDIATIONS[str(code)] = remediations[code]


def default_remediation(code: str) -> str | None:
    """The registered remediation of ``code`` (None for an unregistered code)."""
    return _REMEDIATIONS.get(str(code))


def registered_codes() -> dict[str, str]:
    """Every registered code with its default remediation (a copy)."""
    return dict(_REMEDIATIONS)


class TollgateError(APIException):
    """Raised anywhere; rendered as RFC 9457 problem+json by ``problem_exception_handler``.

    It subclasses DRF's ``APIException`` so that authentication classes may raise it too.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        remediation: str | None = None,
        status: int = 400,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=message, code=str(code))
        self.code = str(code)
        self.message = message
        self.remediation = remediation
        self.status_code = status
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def invalid_value_error() -> TollgateError:
    """400 for a value the database refused as data (NUL, bad encoding, out of range)."""
    return TollgateError(
        CoreErrorCode.INVALID_VALUE,
        "A value in the request cannot be stored (bad encoding, NUL character or a number out "
        "of range); nothing was written.",
        remediation="Remove NUL characters and invalid encodings, and keep numbers within the "
        "documented ranges.",
    )


register_error_codes(
    CoreErrorCode,
    {
        CoreErrorCode.VALIDATION_FAILED: "Fix the fields listed in `errors` and retry.",
        CoreErrorCode.MALFORMED_JSON: "Send a well-formed JSON object with "
        "Content-Type: application/json (NaN and Infinity are not JSON).",
        CoreErrorCode.INVALID_JSON_VALUE: "Send values Tollgate can store: no lone UTF-16 "
        "surrogates, finite numbers, integers within 64 bits (`errors[0].field` names it).",
        CoreErrorCode.INVALID_VALUE: "Remove NUL characters and invalid encodings, and keep "
        "numbers within the documented ranges.",
        CoreErrorCode.MALFORMED_REQUEST: "Fix the request line or headers named in `detail`.",
        CoreErrorCode.UNSUPPORTED_MEDIA_TYPE: "Send the body as JSON with the header "
        "Content-Type: application/json.",
        CoreErrorCode.NOT_ACCEPTABLE: "Send `Accept: application/json` (or omit Accept).",
        CoreErrorCode.PAYLOAD_TOO_LARGE: "Send a smaller body; operators can raise "
        "MAX_REQUEST_BODY_BYTES.",
        CoreErrorCode.BODY_TOO_DEEP: "Flatten the body: objects and arrays may nest at most "
        "MAX_BODY_DEPTH levels (default 32).",
        CoreErrorCode.NOT_FOUND: "Check the id and that it belongs to your tenant.",
        CoreErrorCode.METHOD_NOT_ALLOWED: "Use one of the methods in the `Allow` header.",
        CoreErrorCode.AUTHENTICATION_REQUIRED: "Send `Authorization: Bearer tg_<prefix>_<secret>` "
        "with a valid API key.",
        CoreErrorCode.PERMISSION_DENIED: "Use a credential with the required scope or role.",
        CoreErrorCode.RATE_LIMITED: "Retry after the number of seconds in `Retry-After`.",
        CoreErrorCode.CONFLICT: "Re-read the resource and retry with its current state.",
        CoreErrorCode.SERVICE_UNAVAILABLE: "Retry after `Retry-After`; operators: GET /readyz "
        "names the failing dependency.",
        CoreErrorCode.DATABASE_UNAVAILABLE: "Retry after `Retry-After`, with the same "
        "Idempotency-Key for gate calls (a retried commit/release answers 409 if it had already "
        "applied). Operators: see docs/operations.md.",
        CoreErrorCode.REQUEST_TIMEOUT: "Retry later; operators: see REQUEST_TIMEOUT_SECONDS in "
        "docs/operations.md.",
        CoreErrorCode.INTERNAL_ERROR: "Retry later; report the request_id if it persists.",
    },
)
