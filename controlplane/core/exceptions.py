"""DRF exception handler: every error leaves as problem+json with a stable ``code``."""

from __future__ import annotations

from typing import Any

import structlog
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from controlplane.core.dberrors import classify_database_error
from controlplane.core.errors import CoreErrorCode, TollgateError, invalid_value_error
from controlplane.core.problems import PROBLEM_CONTENT_TYPE, problem_body
from controlplane.core.watchdog import RequestTimedOut

log = structlog.get_logger(__name__)


def flatten_errors(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Turn DRF's nested error detail into ``[{"field": "a.b[0]", "message", "code"}]``."""
    out: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                out.extend(flatten_errors(value, prefix))
            else:
                out.extend(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list):
        if all(isinstance(item, (str, drf.ErrorDetail)) for item in detail):
            for item in detail:
                out.extend(flatten_errors(item, prefix))
        else:
            for index, item in enumerate(detail):
                if item:
                    out.extend(flatten_errors(item, f"{prefix}[{index}]"))
    else:
        out.append(
            {
                "field": prefix or None,
                "message": str(detail),
                "code": getattr(detail, "code", None) or "invalid",
            }
        )
    return out


def _problem(
    status: int,
    code: str,
    detail: str,
    *,
    context: dict,
    remediation: str | None = None,
    errors: list | None = None,
    headers: dict | None = None,
    extra: dict | None = None,
) -> Response:
    request = context.get("request")
    request_id = getattr(getattr(request, "_request", request), "request_id", None)
    body = problem_body(
        status=status,
        code=code,
        detail=detail,
        remediation=remediation,
        errors=errors,
        request_id=request_id,
        extra=extra,
    )
    response = Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)
    # Errors must not be content-negotiated away: always render as JSON.
    return response


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Map any exception to problem+json; unknown exceptions become a logged 500 INTERNAL_ERROR."""
    set_rollback()
    if isinstance(exc, TollgateError):
        return _problem(
            exc.status_code,
            exc.code,
            exc.message,
            context=context,
            remediation=exc.remediation,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )
    if isinstance(exc, drf.ValidationError):
        errors = flatten_errors(exc.detail)
        first = errors[0]["message"] if errors else "Invalid input."
        return _problem(
            400,
            CoreErrorCode.VALIDATION_FAILED,
            f"The request body is invalid: {first}"
            if len(errors) == 1
            else f"The request body has {len(errors)} invalid fields.",
            context=context,
            remediation="Fix the fields listed in `errors` and retry.",
            errors=errors,
        )
    if isinstance(exc, drf.ParseError):
        return _problem(
            400,
            CoreErrorCode.MALFORMED_JSON,
            f"The request body is not valid JSON: {exc.detail}",
            context=context,
            remediation="Send a well-formed JSON object with Content-Type: application/json.",
        )
    if isinstance(exc, drf.UnsupportedMediaType):
        return _problem(
            415,
            CoreErrorCode.UNSUPPORTED_MEDIA_TYPE,
            str(exc.detail),
            context=context,
            remediation="Send the body as JSON with the header Content-Type: application/json.",
        )
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return _problem(
            401,
            CoreErrorCode.AUTHENTICATION_REQUIRED,
            str(exc.detail),
            context=context,
            remediation="Send `Authorization: Bearer tg_<prefix>_<secret>` with a valid API key.",
            headers={"WWW-Authenticate": 'Bearer realm="tollgate"'},
        )
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        return _problem(
            403,
            CoreErrorCode.PERMISSION_DENIED,
            str(getattr(exc, "detail", "")) or "You do not have permission for this action.",
            context=context,
            remediation="Use a credential with the required scope or role.",
        )
    if isinstance(exc, (drf.NotFound, Http404)):
        return _problem(
            404,
            CoreErrorCode.NOT_FOUND,
            "No such resource.",
            context=context,
            remediation="Check the id and that it belongs to your tenant.",
        )
    if isinstance(exc, drf.MethodNotAllowed):
        view = context.get("view")
        allow = ", ".join(getattr(view, "allowed_methods", []) or [])
        return _problem(
            405,
            CoreErrorCode.METHOD_NOT_ALLOWED,
            str(exc.detail),
            context=context,
            remediation=f"Use one of: {allow}." if allow else None,
            headers={"Allow": allow} if allow else None,
        )
    if isinstance(exc, drf.NotAcceptable):
        return _problem(406, CoreErrorCode.NOT_ACCEPTABLE, str(exc.detail), context=context)
    if isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1)
        return _problem(
            429,
            CoreErrorCode.RATE_LIMITED,
            "Too many requests.",
            context=context,
            remediation=f"Retry after {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, RequestDataTooBig):
        return _problem(
            413,
            CoreErrorCode.PAYLOAD_TOO_LARGE,
            "The request body is larger than this server accepts.",
            context=context,
            remediation="Send a smaller body (see MAX_REQUEST_BODY_BYTES).",
        )
    if isinstance(exc, DatabaseError):
        return database_problem(exc, context=context)
    if isinstance(exc, RequestTimedOut):
        return _problem(
            503,
            CoreErrorCode.REQUEST_TIMEOUT,
            "The request ran past the server's time limit and was stopped; nothing was written.",
            context=context,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, drf.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        return _problem(
            exc.status_code,
            str(code).upper(),
            str(exc.detail),
            context=context,
        )
    return _internal_error(exc, context=context, event="unhandled_exception")


def _internal_error(exc: Exception, *, context: dict, event: str) -> Response:
    """A bug: logged with its traceback, answered 500 INTERNAL_ERROR."""
    log.exception(event, exc_type=type(exc).__name__)
    return _problem(
        500,
        CoreErrorCode.INTERNAL_ERROR,
        "An internal error occurred; it has been logged.",
        context=context,
    )


DATABASE_RETRY_AFTER_SECONDS = 5


def database_error_problem(exc: DatabaseError) -> dict | None:
    """status/code/detail for a database error that is not a bug, else None (a logged 500).

    The one mapping for DRF views (below) and plain Django views (``DatabaseErrorMiddleware``).
    """
    kind = classify_database_error(exc)
    if kind in ("unavailable", "timeout"):
        log.error(
            "database_unavailable", kind=kind, exc_type=type(exc).__name__, error=str(exc)[:300]
        )
        return {
            "status": 503,
            "code": CoreErrorCode.DATABASE_UNAVAILABLE,
            "detail": "The database is unavailable or overloaded"
            + (" (a statement timed out)" if kind == "timeout" else "")
            + "; the request was not completed.",
            "headers": {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            "extra": {"cause": kind},
        }
    if kind == "client":
        # The database refused a value of the request: the client's error, whichever view let
        # it through (the same 400 the gate answers).
        log.warning("database_rejected_value", exc_type=type(exc).__name__, error=str(exc)[:300])
        error = invalid_value_error()
        return {
            "status": error.status_code,
            "code": error.code,
            "detail": error.message,
            "remediation": error.remediation,
        }
    if kind == "integrity":
        log.warning(
            "database_integrity_conflict", exc_type=type(exc).__name__, error=str(exc)[:300]
        )
        return {
            "status": 409,
            "code": CoreErrorCode.CONFLICT,
            "detail": "The change conflicts with the current state (a concurrent change or a "
            "constraint); nothing was written.",
        }
    return None


def database_problem(exc: DatabaseError, *, context: dict) -> Response:
    mapped = database_error_problem(exc)
    if mapped is None:
        return _internal_error(exc, context=context, event="unhandled_database_error")
    return _problem(
        mapped["status"],
        mapped["code"],
        mapped["detail"],
        context=context,
        remediation=mapped.get("remediation"),
        headers=mapped.get("headers"),
        extra=mapped.get("extra"),
    )
