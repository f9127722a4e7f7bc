"""The gate: one decision path for every caller (the API view, integrations, the LLM gateway).

``gate_decide`` runs the seams in order, in one transaction:

1. ``request``: scope, fingerprint and the checks that need no database;
2. ``load``: idempotency, policy, covering budgets, their periods locked (one lock order,
   ``services.locking``), chain heads, rollups; one SQL function call on PostgreSQL;
3. ``decide``: the pure engine through the policy evaluation; the rows it would write;
4. ``persist``: write them (nothing for a dry run);
5. ``answer``: the one body builder, also used by replays, continuations and the fail mode.

When it raises ``CannotDecide`` (or a ``DatabaseError`` escapes from outside the decision's
transaction) the caller answers with ``gate_fail_answer``: the one fail-mode path.
"""

from __future__ import annotations

import time

import structlog
from django.db import DatabaseError, IntegrityError, transaction

from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.tenancy.models import ApiKey, Tenant
from controlplane.tenancy.selectors import project_get
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import GATE_DECISIONS, GATE_LATENCY
from enforcement.models import Decision
from enforcement.services import continuation
from enforcement.services.gate.answer import answer_replay, gate_answer
from enforcement.services.gate.decide import decide
from enforcement.services.gate.failures import (
    IDEMPOTENCY_CONSTRAINT,
    constraint_of,
    database_failure,
    gate_fail_answer,
    integrity_conflict,
)
from enforcement.services.gate.load import find_decision, load
from enforcement.services.gate.persist import persist
from enforcement.services.gate.request import (
    FAIL_MODE_CAUSES,
    CannotDecide,
    GateRequest,
    GateResult,
    amount,
    check_request,
    checked_ttl,
    deadline_ms,
    request_fingerprint,
    request_record,
    scope_names,
)
from enforcement.services.policies import active_policy, last_known_policy

log = structlog.get_logger(__name__)

__all__ = [
    "FAIL_MODE_CAUSES",
    "CannotDecide",
    "GateRequest",
    "GateResult",
    "database_failure",
    "gate_answer",
    "gate_decide",
    "gate_fail_answer",
    "request_fingerprint",
]


def _replay(existing: Decision, fp: str, api_key: ApiKey | None) -> GateResult:
    if existing.fingerprint != fp:
        raise TollgateError(
            EnforcementErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This idempotency key was already used for a different request.",
            remediation="Use a new idempotency key for a changed request.",
            status=409,
            extra={"decision_id": existing.id, "fingerprint": existing.fingerprint},
        )
    return GateResult(response=answer_replay(existing, api_key=api_key), created=False)


def gate_decide(*, tenant: Tenant, api_key: ApiKey | None, req: GateRequest) -> GateResult:
    """Answer one gate call; replays are free, new decisions are written in one transaction."""
    started = time.perf_counter()
    project_slug, environment = scope_names(api_key, req)
    fp = request_fingerprint(req, project_slug, environment)
    if req.approval_token:
        # Before the idempotency replay: re-running a CI step with its key + the token continues.
        project = project_get(tenant=tenant, slug=project_slug)
        check_request(req)
        return _continue_with_token(tenant, req, project, environment, fp)
    check_request(req)
    policy = last_known_policy(tenant.id)  # its deadline bounds the first locks (load)
    deadline = None

    def call_deadline(current_policy) -> int:
        nonlocal deadline
        deadline = deadline_ms(req, current_policy)
        return deadline

    try:
        with transaction.atomic():
            loaded = load(tenant, req, project_slug, environment, policy, call_deadline)
            if isinstance(loaded, Decision):
                return _replay(loaded, fp, api_key)
            decided = decide(
                loaded=loaded,
                tenant=tenant,
                environment=environment,
                req=req,
                fp=fp,
                ttl=checked_ttl(req, loaded.policy),
                started=started,
                api_key=api_key,
            )
            if req.dry_run:
                transaction.set_rollback(True)  # a period or chain head it opened goes too
            else:
                persist(decided, loaded)
    except IntegrityError as exc:
        if constraint_of(exc) != IDEMPOTENCY_CONSTRAINT:
            raise integrity_conflict(exc) from exc
        # A concurrent call with the same idempotency key won the insert: answer as a replay.
        existing = find_decision(tenant, req.source, req.idempotency_key)
        if existing is None:
            raise integrity_conflict(exc) from exc
        return _replay(existing, fp, api_key)
    except DatabaseError as exc:
        raise database_failure(exc, tenant, deadline=deadline) from exc
    body = decided.response
    if not req.dry_run:
        GATE_DECISIONS.labels(source=req.source, outcome=body["outcome"], mode=body["mode"]).inc()
    GATE_LATENCY.observe(time.perf_counter() - started)
    log.info(
        "gate_decision",
        decision=body["decision_id"],
        outcome=body["outcome"],
        reason_code=body["reason_code"],
        mode=body["mode"],
        project=project_slug,
        environment=environment,
        dry_run=req.dry_run,
    )
    return GateResult(response=body, created=not req.dry_run)


def _continue_with_token(tenant, req: GateRequest, project, environment, fp) -> GateResult:
    """The approved continuation of a REQUIRE_APPROVAL decision (see services.continuation)."""
    ttl = checked_ttl(req, active_policy(tenant.id))
    response, created = continuation.gate_continue(
        tenant=tenant,
        token=req.approval_token,
        source=req.source,
        idempotency_key=req.idempotency_key,
        project=project,
        environment=environment,
        fingerprint=fp,
        amount_micros=amount(req, db_now().date()),
        ttl_seconds=ttl,
        request_record=request_record(req, project.slug, environment),
    )
    if created:
        GATE_DECISIONS.labels(source=req.source, outcome="ALLOW", mode=response["mode"]).inc()
    return GateResult(response=response, created=created)
