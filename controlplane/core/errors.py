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
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RATE_LIMITED = "RATE_LIMITED"
    CONFLICT = "CONFLICT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


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
        "A value in this request cannot be stored; nothing was written.",
        remediation="Send printable text without NUL characters and values in range.",
    )
