"""``RequestGatesMiddleware``: lifecycle -> billing -> protection, before any view runs.

Each gate is timed (``gate_latency_seconds{gate}``). A refusal is answered here as
problem+json, or by the page renderer a resolver put on the request (``REFUSAL_RENDERER``:
the dashboard shows refusals as pages); a degraded answer (a provider's last known state, a
fail-open) passes with the header ``Tollgate-Degraded: <gate>=<how>``.
See docs/billing.md#request-gates.
"""

from __future__ import annotations

import time

import structlog
from django.conf import settings
from django.db import DatabaseError
from django.utils.module_loading import import_string

from billing.gates import checks, routes
from billing.gates.config import check_settings
from billing.gates.metrics import GATE_LATENCY
from controlplane.core.errors import TollgateError
from controlplane.core.exceptions import database_error_problem
from controlplane.core.problems import problem_response

log = structlog.get_logger(__name__)

# A resolver that knows a better way to show a refusal than problem+json (a browser page) sets
# this request attribute to ``renderer(request, *, status, code, detail, remediation, headers)``.
REFUSAL_RENDERER = "tollgate_gate_refusal_renderer"


class RequestGatesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        check_settings()

    def __call__(self, request):
        if not settings.REQUEST_GATES_ENABLED or routes.is_exempt(request.path):
            return self.get_response(request)
        try:
            caller = _resolve(request)
        except TollgateError as exc:
            return _problem(
                request,
                exc.status_code,
                exc.code,
                exc.message,
                exc.remediation,
                exc.headers,
                exc.extra,
            )
        except DatabaseError as exc:
            # The one mapping of database errors (controlplane.core.exceptions): an outage is
            # 503 DATABASE_UNAVAILABLE with its cause, as on every other path; a bug stays a 500.
            mapped = database_error_problem(exc)
            if mapped is None:
                raise
            log.error("request_gate_auth_unavailable", error=type(exc).__name__)
            return _problem(
                request,
                mapped["status"],
                mapped["code"],
                "Credentials cannot be checked right now. " + mapped["detail"],
                mapped.get("remediation") or "Retry shortly; authentication never fails open.",
                mapped.get("headers") or {},
                mapped.get("extra") or {},
            )
        tenant_id, api_key_id = caller or (None, None)
        run = checks.GateRun()
        blocked = run_gates(request.method, request.path, run, tenant_id, api_key_id)
        if blocked is not None:
            return _problem(
                request,
                blocked.status,
                blocked.code,
                blocked.detail,
                blocked.remediation,
                blocked.headers,
                blocked.extra,
            )
        response = self.get_response(request)
        if run.degraded:
            response["Tollgate-Degraded"] = ", ".join(run.degraded)
        return response


def _resolve(request):
    for path in settings.REQUEST_GATE_TENANT_RESOLVERS:
        caller = import_string(path)(request)
        if caller is not None:
            return caller
    return None


def _timed(gate: str, check):
    started = time.perf_counter()
    try:
        return check()
    finally:
        GATE_LATENCY.labels(gate=gate).observe(time.perf_counter() - started)


def run_gates(method: str, path: str, run, tenant_id, api_key_id):
    """Lifecycle -> billing -> protection for one request; the first refusal, or None.

    Also called by the LLM proxy (``enforcement.llm.proxy``), which is served outside Django's
    middleware chain."""
    if tenant_id is not None:
        blocked = _timed("lifecycle", lambda: checks.lifecycle_check(run, tenant_id))
        if blocked is not None:
            return blocked
        if not routes.is_billing_exempt(method, path):
            metered = routes.is_metered(method, path)
            blocked = _timed(
                "billing", lambda: checks.billing_check(run, tenant_id, metered=metered)
            )
            if blocked is not None:
                return blocked
    if settings.PROTECTION_REDIS_URL:
        return _timed("protection", lambda: checks.protection_check(run, tenant_id, api_key_id))
    return None


def _problem(request, status, code, detail, remediation, headers, extra):
    refusal = {
        "status": status,
        "code": str(code),
        "detail": detail,
        "remediation": remediation,
        "headers": headers or {},
    }
    render = getattr(request, REFUSAL_RENDERER, None)
    if render is not None:
        return render(request, **refusal)
    return problem_response(request, **refusal, extra=extra)
