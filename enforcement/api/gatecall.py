"""One way to ask the gate from an HTTP adapter: the decision, or the fail mode's answer.

The gate endpoint and every integration (preflight, admission, CloudEvents, run task) call
``gate_call``; when the gate cannot decide, ``cannot_decide`` answers by the environment's fail
mode, the same for all of them.
"""

from __future__ import annotations

import structlog
from django.db import DatabaseError

from controlplane.core.errors import TollgateError
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import GATE_FAIL_CLOSED, GATE_FAIL_OPEN
from enforcement.services.gate import (
    FAIL_MODE_CAUSES,
    CannotDecide,
    GateRequest,
    database_failure,
    gate_decide,
)
from enforcement.services.policies import last_known_policy

log = structlog.get_logger(__name__)


def gate_call(*, tenant, api_key, req: GateRequest) -> tuple[dict, int]:
    """(answer body, HTTP status): 201 new, 200 replay or fail-open; raises for a closed fail."""
    try:
        result = gate_decide(tenant=tenant, api_key=api_key, req=req)
    except (CannotDecide, DatabaseError) as exc:
        # A DatabaseError here came from outside the decision's own transaction (token
        # continuation, replays): the same classification, but no timeout there is the
        # decision deadline, so none of them takes the fail mode.
        failure = (
            exc
            if isinstance(exc, CannotDecide)
            else database_failure(exc, tenant, in_decision=False)
        )
        if isinstance(failure, CannotDecide):
            return cannot_decide(tenant, req, failure.cause, failure.detail), 200
        raise failure from exc
    return result.response, (201 if result.created else 200)


def cannot_decide(tenant, gate_request: GateRequest, cause: str, detail: str) -> dict:
    """No decision could be made; nothing was written.

    For the ``FAIL_MODE_CAUSES`` (the database is unreachable, or the decision deadline
    passed) the fail mode of the environment class answers, from the last policy this
    process saw for the tenant (no database access on this path): the fail-open body is
    returned, a closed fail raises 503 ``GATE_UNAVAILABLE``. Any other cause fails closed
    whatever the fail mode: neither a bug nor client data can become an ALLOW.
    """
    log.error("gate_cannot_decide", cause=cause, detail=detail)
    policy = last_known_policy(tenant.id)
    env_class = policy.env_class(gate_request.environment or "")
    fail_mode = policy.fail_mode(env_class) if cause in FAIL_MODE_CAUSES else "closed"
    deadline_ms = min(policy.deadline_ms, gate_request.deadline_ms or policy.deadline_ms)
    why = {
        "database": "the database is unavailable",
        "deadline": f"the {deadline_ms} ms decision deadline passed",
    }.get(cause, "an unexpected error occurred; it was logged")
    if fail_mode == "open":
        GATE_FAIL_OPEN.inc()
        return {
            "decision_id": None,
            "outcome": "ALLOW",
            "evaluated_outcome": None,
            "mode": policy.mode(gate_request.source, env_class),
            "enforced": False,
            "breach": False,
            "reason_code": "FAIL_OPEN",
            "message": f"Tollgate could not decide ({why}); the {env_class} fail mode "
            "is open, so this is allowed and flagged.",
            "remediation": "Nothing was reserved or recorded; re-gate when Tollgate is healthy.",
            "reservation": None,
            "approval": None,
            "waterfall": [],
            "policy": {"version": policy.version, "sha256": policy.sha256},
            "fail_open": True,
            "fail_cause": cause,
        }
    GATE_FAIL_CLOSED.inc()
    raise TollgateError(
        EnforcementErrorCode.GATE_UNAVAILABLE,
        f"Tollgate could not decide ({why}); the {env_class} fail mode is closed.",
        remediation="Retry with the same Idempotency-Key; nothing was reserved.",
        status=503,
        headers={"Retry-After": "5"},
        extra={"fail_open": False, "fail_cause": cause},
    )


def gate_request_from(data: dict, *, source: str, idempotency_key: str, **extra) -> GateRequest:
    """The one mapping of validated gate fields (``GateDecisionRequestSerializer`` names, money
    already in micro-dollars) onto a ``GateRequest``; ``extra`` sets dry_run / deadline_ms."""
    return GateRequest(
        source=source,
        idempotency_key=idempotency_key,
        project=data.get("project"),
        environment=data.get("environment"),
        action=data.get("action") or "",
        resource=dict(data.get("resource") or {}),
        estimated_micros=data.get("estimated_cost_usd"),
        monthly_micros=data.get("monthly_delta_usd"),
        hourly_micros=data.get("hourly_delta_usd"),
        labels=dict(data.get("labels") or {}),
        requester=data.get("requester") or "",
        ttl_seconds=data.get("ttl_seconds"),
        approval_token=data.get("approval_token"),
        **extra,
    )
