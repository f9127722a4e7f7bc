"""When the gate cannot decide: what a database error becomes, and the fail-mode answer."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from django.db import DatabaseError, IntegrityError

from controlplane.core import dberrors
from controlplane.core.dberrors import classify_database_error
from controlplane.core.errors import TollgateError, invalid_value_error
from controlplane.core.money import format_usd
from controlplane.tenancy.models import Tenant
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import GATE_FAIL_CLOSED, GATE_FAIL_OPEN
from enforcement.services.gate.answer import gate_answer
from enforcement.services.gate.request import (
    FAIL_MODE_CAUSES,
    CannotDecide,
    GateRequest,
    GateResult,
    amount,
    deadline_ms,
    request_fingerprint,
    scope_names,
)
from enforcement.services.policies import last_known_policy

log = structlog.get_logger(__name__)

IDEMPOTENCY_CONSTRAINT = "decision_idempotency_unique"


def constraint_of(exc: BaseException) -> str | None:
    """The name of the constraint a PostgreSQL integrity error names (None elsewhere)."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name is None and "UNIQUE constraint failed" in str(exc) and "idempotency_key" in str(exc):
        return IDEMPOTENCY_CONSTRAINT  # SQLite names columns, not constraints
    return name


def integrity_conflict(exc: IntegrityError) -> TollgateError:
    """A constraint other than the idempotency key refused the decision: a conflict, never a
    replay and never a 500. With the locking rules this should not happen; it is logged."""
    constraint = constraint_of(exc)
    log.error("gate_integrity_conflict", constraint=constraint, error=str(exc)[:300])
    return TollgateError(
        EnforcementErrorCode.DECISION_CONFLICT,
        "A concurrent change to the same budgets or credits refused this decision; nothing "
        "was written.",
        status=409,
        extra={"constraint": constraint},
    )


def database_failure(
    exc: DatabaseError, tenant: Tenant, *, in_decision: bool = True, deadline: int | None = None
) -> Exception:
    """What a database error met while gating becomes: the one path for every caller.

    Classified in one place (``controlplane.core.dberrors``): a value the caller sent is a 4xx;
    a constraint is a 409 ``DECISION_CONFLICT`` (the idempotency key's own race is a replay and
    never reaches here); an unreachable database is the ``database`` cause; a statement or lock
    cancelled by the ``SET LOCAL`` deadline of the decision (``in_decision``) is the
    ``deadline`` cause; anything else (a deadlock, a bug, a timeout outside the decision) fails
    closed, so a bug never turns into an ALLOW.
    """
    kind = classify_database_error(exc)
    if kind == dberrors.INTEGRITY:
        return integrity_conflict(exc)
    if kind == dberrors.CLIENT:
        if dberrors.sqlstate(exc) == "22003":
            # A counter would overflow: the amount is the problem, not the database.
            return TollgateError(
                EnforcementErrorCode.AMOUNT_OUT_OF_RANGE,
                "This amount would overflow a budget or credit counter; nothing was written.",
                remediation="Send a realistic amount, or release/commit the outstanding holds.",
                status=422,
                errors=[
                    {"field": "estimated_cost_usd", "message": "Too large.", "code": "invalid"}
                ],
            )
        return invalid_value_error()
    if kind == dberrors.UNAVAILABLE:
        return CannotDecide("database", type(exc).__name__)
    if (
        kind == dberrors.TIMEOUT
        and in_decision
        and dberrors.sqlstate(exc) in dberrors.DEADLINE_CODES
    ):
        ms = deadline if deadline is not None else last_known_policy(tenant.id).deadline_ms
        return CannotDecide("deadline", f"a lock or statement exceeded {ms} ms")
    log.error("gate_database_error", kind=kind, exc_info=exc)
    return CannotDecide("error", type(exc).__name__)


def gate_fail_answer(
    *, tenant: Tenant, req: GateRequest, exc: CannotDecide | DatabaseError, api_key=None
) -> GateResult:
    """The answer when the gate could not decide (``gate_decide`` raised): the one fail path.

    A ``DatabaseError`` here came from outside the decision's own transaction (a continuation,
    a replay): classified the same way, but no timeout there is the decision deadline. For the
    ``FAIL_MODE_CAUSES`` the fail mode of the environment class answers, from the last policy
    this process saw for the tenant (no database access): ``open`` is an ALLOW flagged
    ``fail_open`` (200, nothing written); ``closed``, and every other cause whatever the fail
    mode, raises 503 ``GATE_UNAVAILABLE``. Anything that is not a cannot-decide (a 4xx, a 409)
    is raised as it is.
    """
    failure = (
        exc if isinstance(exc, CannotDecide) else database_failure(exc, tenant, in_decision=False)
    )
    if not isinstance(failure, CannotDecide):
        raise failure from exc
    cause, detail = failure.cause, failure.detail
    log.error("gate_cannot_decide", cause=cause, detail=detail)
    policy = last_known_policy(tenant.id)
    try:  # the key's binding fills what the body left out (authentication loaded it)
        project, environment = scope_names(api_key, req)
    except (TollgateError, DatabaseError):
        project, environment = req.project or "", req.environment or ""
    env_class = policy.env_class(environment)
    fail_mode = policy.fail_mode(env_class) if cause in FAIL_MODE_CAUSES else "closed"
    why = {
        "database": "the database is unavailable",
        "deadline": f"the {deadline_ms(req, policy)} ms decision deadline passed",
    }.get(cause, "an unexpected error occurred; it was logged")
    if fail_mode != "open":
        GATE_FAIL_CLOSED.inc()
        raise TollgateError(
            EnforcementErrorCode.GATE_UNAVAILABLE,
            f"Tollgate could not decide ({why}); the {env_class} fail mode is closed.",
            remediation="Retry with the same Idempotency-Key; nothing was reserved.",
            status=503,
            headers={"Retry-After": "5"},
            extra={"fail_open": False, "fail_cause": cause},
        )
    GATE_FAIL_OPEN.inc()
    cost = None
    if req.estimated_micros is not None or req.monthly_micros is not None:
        cost = format_usd(amount(req, datetime.now(UTC).date()))  # a hint: no database here
    body = gate_answer(
        decision_id=None,
        outcome="ALLOW",
        evaluated_outcome=None,
        mode=policy.mode(req.source, env_class),
        enforced=False,
        breach=False,
        reason_code="FAIL_OPEN",
        message=f"Tollgate could not decide ({why}); the {env_class} fail mode is open, so this "
        "is allowed and flagged.",
        remediation="Nothing was reserved or recorded; re-gate when Tollgate is healthy.",
        fingerprint=request_fingerprint(req, project, environment),
        amount_usd=cost,
        project=project,
        environment=environment,
        policy={"version": policy.version, "sha256": policy.sha256},
        created_at=None,
        dry_run=req.dry_run,
        fail_open=True,
        fail_cause=cause,
    )
    return GateResult(response=body, created=False)
