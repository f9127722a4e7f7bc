"""One way to ask the gate from an HTTP adapter: the decision, or the fail mode's answer.

The gate endpoint and every integration (preflight, admission, CloudEvents, run task) call
``gate_call``; when the gate cannot decide, ``gate_fail_answer`` answers by the environment's
fail mode, the same for all of them.
"""

from __future__ import annotations

from django.db import DatabaseError

from enforcement.services.gate import CannotDecide, GateRequest, gate_decide, gate_fail_answer


def gate_call(*, tenant, api_key, req: GateRequest) -> tuple[dict, int]:
    """(answer body, HTTP status): 201 new, 200 replay or fail-open; a closed fail raises 503
    ``GATE_UNAVAILABLE`` (issue 12's one fail path, ``gate_fail_answer``)."""
    try:
        result = gate_decide(tenant=tenant, api_key=api_key, req=req)
    except (CannotDecide, DatabaseError) as exc:
        result = gate_fail_answer(tenant=tenant, req=req, exc=exc, api_key=api_key)
    return result.response, (201 if result.created else 200)


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
