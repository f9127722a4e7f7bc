"""Request id propagation, access logs, and the request body size limit."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from django.conf import settings
from django.db import DatabaseError

from controlplane.core.bodies import check_json_depth, check_yaml_depth
from controlplane.core.errors import CoreErrorCode, TollgateError
from controlplane.core.problems import problem_response
from controlplane.core.watchdog import RequestTimedOut

log = structlog.get_logger("tollgate.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    """Accept a sane incoming X-Request-ID or mint one; bind it to every log line; echo it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        auth = getattr(request, "auth", None)
        tenant_id = getattr(auth, "tenant_id", None)
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            tenant=tenant_id,
            api_key_prefix=getattr(auth, "prefix", None),
        )
        structlog.contextvars.clear_contextvars()
        return response


class BodySizeLimitMiddleware:
    """Refuse bodies over MAX_REQUEST_BODY_BYTES before anything reads them (413 problem+json),
    and URLs with NUL characters (400)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # PostgreSQL text cannot hold U+0000: a NUL in the path or query would reach a lookup
        # and fail there as a database error (a 500). Refuse it up front as a client error.
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return problem_response(
                request,
                status=400,
                code=CoreErrorCode.MALFORMED_REQUEST,
                detail="The URL contains a NUL character.",
                remediation="Remove %00 from the path and query string.",
            )
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return problem_response(
                request,
                status=400,
                code=CoreErrorCode.MALFORMED_REQUEST,
                detail="The Content-Length header is not a number.",
            )
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return problem_response(
                request,
                status=413,
                code=CoreErrorCode.PAYLOAD_TOO_LARGE,
                detail=f"The request body ({length} bytes) is larger than the limit "
                f"({settings.MAX_REQUEST_BODY_BYTES} bytes).",
                remediation="Send a smaller body; operators can raise MAX_REQUEST_BODY_BYTES.",
            )
        if length:
            try:
                _check_body_depth(request)
            except TollgateError as exc:
                return problem_response(
                    request,
                    status=exc.status_code,
                    code=exc.code,
                    detail=exc.message,
                    errors=exc.errors,
                )
        return self.get_response(request)


def _check_body_depth(request) -> None:
    """BODY_TOO_DEEP before any view work: every JSON and YAML body, on every endpoint.

    The body is at most MAX_REQUEST_BODY_BYTES (checked above); reading it here leaves it
    readable for the view (Django keeps it as ``request.body``).
    """
    media = (request.content_type or "").lower()
    if "json" in media:
        check_json_depth(request.body)
    elif "yaml" in media:
        check_yaml_depth(request.body.decode("utf-8", errors="replace"))


class InfrastructureErrorMiddleware:
    """Plain Django views (admin, dashboard, health) answer a database outage or a request past
    its time limit like the API does (503 problem+json with ``Retry-After``), not a 500 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from controlplane.core.exceptions import (
            DATABASE_RETRY_AFTER_SECONDS,
            database_error_problem,
        )

        if isinstance(exception, RequestTimedOut):
            return problem_response(
                request,
                status=503,
                code=CoreErrorCode.REQUEST_TIMEOUT,
                detail="The request ran past the server's time limit and was stopped.",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        if not isinstance(exception, DatabaseError):
            return None
        mapped = database_error_problem(exception)
        if mapped is None:
            return None  # a bug: Django's 500 handler logs it
        return problem_response(request, **mapped)
