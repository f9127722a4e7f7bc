"""The gate: validate, de-duplicate, lock, decide with the pure engine, and write it all at once."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from controlplane.audit.chain import GENESIS_HASH, budget_period_chain, scope_chain
from controlplane.audit.models import OutboxEvent
from controlplane.audit.services import ledger_append, next_entry
from controlplane.core import dberrors
from controlplane.core.canonical import fingerprint
from controlplane.core.clock import db_now
from controlplane.core.dberrors import classify_database_error
from controlplane.core.errors import TollgateError, invalid_value_error
from controlplane.core.money import format_usd
from controlplane.tenancy.models import ApiKey, Project, Tenant
from enforcement import engine
from enforcement.context import compute_context
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import (
    GATE_DECISIONS,
    GATE_LATENCY,
    POLICY_RULE_ERRORS,
)
from enforcement.models import (
    Budget,
    BudgetPeriod,
    CreditGrant,
    Decision,
    Reservation,
    ReservationAllocation,
    SpendRollup,
)
from enforcement.periods import days_left_including_today, period_bounds
from enforcement.policy.compiled import CompiledPolicy
from enforcement.policy.evaluate import evaluate, snapshot_to_dict
from enforcement.services import approvals, continuation
from enforcement.services.locking import lock_current_periods, lock_drawable_grants
from enforcement.services.policies import active_policy, last_known_policy, published_policy

log = structlog.get_logger(__name__)

FINGERPRINT_FIELDS = (
    "source",
    "project",
    "environment",
    "action",
    "resource",
    "estimated_cost_usd",
    "monthly_delta_usd",
    "hourly_delta_usd",
    "labels",
    "requester",
)


@dataclass
class GateRequest:
    """A validated gate call (money already in micro-dollars)."""

    source: str
    idempotency_key: str
    project: str | None = None
    environment: str | None = None
    action: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    estimated_micros: int | None = None
    monthly_micros: int | None = None
    hourly_micros: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    requester: str = ""
    ttl_seconds: int | None = None
    approval_token: str | None = None
    # Decide but persist nothing (k8s admission dryRun): the transaction is rolled back.
    dry_run: bool = False
    # A caller's own deadline below the policy's (admission webhook timeouts); the lower wins.
    deadline_ms: int | None = None


@dataclass
class GateResult:
    response: dict[str, Any]
    created: bool


class CannotDecide(Exception):
    """The decision could not be made: the view answers without a decision.

    Raised after the transaction rolled back, so nothing of the decision was written. Only the
    ``FAIL_MODE_CAUSES`` (the database is unreachable, or the decision deadline Tollgate set
    passed) let the environment's fail mode answer; any other cause fails closed, so neither a
    bug nor anything a client sends can turn into a fail-open ALLOW.
    """

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause  # "database" | "deadline" | "error" (the last always fails closed)
        self.detail = detail


# The causes that let the environment's fail mode answer: the database is unreachable, or the
# decision deadline Tollgate set itself passed. Everything else fails closed.
FAIL_MODE_CAUSES = frozenset({"database", "deadline"})
IDEMPOTENCY_CONSTRAINT = "decision_idempotency_unique"


def _constraint(exc: BaseException) -> str | None:
    """The name of the constraint a PostgreSQL integrity error names (None elsewhere)."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name is None and "UNIQUE constraint failed" in str(exc) and "idempotency_key" in str(exc):
        return IDEMPOTENCY_CONSTRAINT  # SQLite names columns, not constraints
    return name


def _integrity_conflict(exc: IntegrityError) -> TollgateError:
    """A constraint other than the idempotency key refused the decision: a conflict, never a
    replay and never a 500. With the locking rules this should not happen; it is logged."""
    constraint = _constraint(exc)
    log.error("gate_integrity_conflict", constraint=constraint, error=str(exc)[:300])
    return TollgateError(
        EnforcementErrorCode.DECISION_CONFLICT,
        "A concurrent change to the same budgets or credits refused this decision; nothing "
        "was written.",
        status=409,
        extra={"constraint": constraint},
    )


def database_failure(exc: DatabaseError, tenant: Tenant, *, in_decision: bool = True) -> Exception:
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
        return _integrity_conflict(exc)
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
        ms = last_known_policy(tenant.id).deadline_ms  # the one the SQL path ended up using
        return CannotDecide("deadline", f"a lock or statement exceeded {ms} ms")
    log.error("gate_database_error", kind=kind, exc_info=exc)
    return CannotDecide("error", type(exc).__name__)


def _deadline_ms(policy: CompiledPolicy, req: GateRequest) -> int:
    """The policy's decision deadline, or the caller's when it is lower."""
    ms = int(policy.deadline_ms)
    return min(ms, req.deadline_ms) if req.deadline_ms else ms


def _begin_decision(policy: CompiledPolicy, req: GateRequest):
    """Bound lock waits and statements by the decision deadline; return the transaction time.

    On PostgreSQL this is one round trip (two SET LOCALs and ``now()`` in one call).
    """
    if connection.vendor != "postgresql":
        return db_now()
    ms = _deadline_ms(policy, req)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}; SELECT now()"
        )
        while cursor.description is None and cursor.nextset():
            pass
        return cursor.fetchone()[0]


def _money(value: int | None) -> str | None:
    return None if value is None else format_usd(value)


def request_fingerprint(req: GateRequest, project: str, environment: str) -> str:
    """sha256 over the decision-relevant fields (not ttl, token or idempotency key)."""
    return fingerprint(
        {
            "source": req.source,
            "project": project,
            "environment": environment,
            "action": req.action,
            "resource": req.resource,
            "estimated_cost_usd": _money(req.estimated_micros),
            "monthly_delta_usd": _money(req.monthly_micros),
            "hourly_delta_usd": _money(req.hourly_micros),
            "labels": req.labels,
            "requester": req.requester,
        }
    )


def _scope_names(api_key: ApiKey | None, req: GateRequest) -> tuple[str, str]:
    """The project slug and environment of a call (from the body, else the key's binding)."""
    project_slug = req.project or (api_key.project.slug if api_key and api_key.project_id else None)
    environment = req.environment or (api_key.environment if api_key else "") or ""
    errors = []
    if not project_slug:
        errors.append({"field": "project", "message": "Required.", "code": "required"})
    if not environment:
        errors.append({"field": "environment", "message": "Required.", "code": "required"})
    if errors:
        raise TollgateError(
            "VALIDATION_FAILED",
            "project and environment are required (or bind them to the API key).",
            errors=errors,
        )
    if api_key is not None:
        if api_key.project_id and api_key.project.slug != project_slug:
            raise TollgateError(
                EnforcementErrorCode.KEY_SCOPE_MISMATCH,
                f"This API key is bound to project {api_key.project.slug!r}.",
                remediation="Use a key for this project, or omit `project`.",
                status=403,
            )
        if api_key.environment and api_key.environment != environment:
            raise TollgateError(
                EnforcementErrorCode.KEY_SCOPE_MISMATCH,
                f"This API key is bound to environment {api_key.environment!r}.",
                remediation="Use a key for this environment, or omit `environment`.",
                status=403,
            )
    return project_slug, environment


def _replay(existing: Decision, fp: str, api_key: ApiKey | None = None) -> GateResult:
    if existing.fingerprint != fp:
        raise TollgateError(
            EnforcementErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This idempotency key was already used for a different request.",
            remediation="Use a new idempotency key for a changed request.",
            status=409,
            extra={"decision_id": existing.id, "fingerprint": existing.fingerprint},
        )
    response = dict(existing.response)
    response["idempotent_replay"] = True
    reservation = Reservation.objects.filter(decision_id=existing.id).first()
    if reservation is not None and response.get("reservation"):
        response["reservation"] = {
            **response["reservation"],
            "state": reservation.state,
            "expires_at": reservation.expires_at.isoformat(),
        }
    if response.get("approval"):
        response["approval"] = approvals.approval_replay_summary(
            decision_id=existing.id, api_key=api_key
        )
    return GateResult(response=response, created=False)


def _find(tenant: Tenant, source: str, key: str) -> Decision | None:
    return Decision.objects.filter(tenant=tenant, source=source, idempotency_key=key).first()


def _use_sql_functions() -> bool:
    """PostgreSQL runs the read-and-lock and the write as two function calls (migration 0004)."""
    return connection.vendor == "postgresql" and settings.GATE_SQL_FUNCTIONS


def gate_decide(*, tenant: Tenant, api_key: ApiKey | None, req: GateRequest) -> GateResult:
    """Answer one gate call; replays are free, new decisions are written in one transaction."""
    started = time.perf_counter()
    project_slug, environment = _scope_names(api_key, req)
    fp = request_fingerprint(req, project_slug, environment)
    if req.approval_token:
        # Before the idempotency replay: re-running a CI step with its key + the token continues.
        project = _project(tenant, project_slug)
        return _continue_with_token(tenant, req, project, environment, fp)
    _check_cost(req)
    policy = last_known_policy(tenant.id)  # its deadline bounds the first locks; see _load_sql
    try:
        with transaction.atomic():
            if _use_sql_functions():
                loaded = _load_sql(tenant, req, project_slug, environment, policy)
            else:
                loaded = _load_orm(tenant, req, project_slug, environment)
            if isinstance(loaded, Decision):
                return _replay(loaded, fp, api_key)
            ttl = _checked_ttl(req, loaded.policy)
            result = _decide_locked(
                loaded=loaded,
                tenant=tenant,
                environment=environment,
                req=req,
                fp=fp,
                ttl=ttl,
                deadline=started + _deadline_ms(loaded.policy, req) / 1000,
                api_key=api_key,
            )
            if req.dry_run:
                transaction.set_rollback(True)  # decided, and nothing of it is kept
                result.response["dry_run"] = True
    except IntegrityError as exc:
        if _constraint(exc) != IDEMPOTENCY_CONSTRAINT:
            raise _integrity_conflict(exc) from exc
        # A concurrent call with the same idempotency key won the insert: answer as a replay.
        existing = _find(tenant, req.source, req.idempotency_key)
        if existing is None:
            raise _integrity_conflict(exc) from exc
        return _replay(existing, fp, api_key)
    except DatabaseError as exc:
        raise database_failure(exc, tenant) from exc
    body = result.response
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
    )
    return result


@dataclass
class _Loaded:
    """Everything a decision reads, taken inside its transaction with the periods locked."""

    now: datetime
    project: Project
    policy: CompiledPolicy
    budgets: list[Budget]  # covering budgets, widest scope first
    periods: list[BudgetPeriod]  # their current periods, in the same order, locked
    rollups: dict[date, int]  # this month's spend per day for the project + environment
    heads: dict[str, tuple[int, str]] | None = None  # locked chain heads (SQL path only)


def _unknown_project(slug: str) -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.UNKNOWN_PROJECT,
        f"No project {slug!r} in this tenant.",
        remediation="Create it with POST /api/v1/projects or fix the slug.",
        errors=[{"field": "project", "message": "Unknown project.", "code": "invalid"}],
    )


def _project(tenant: Tenant, slug: str) -> Project:
    project = Project.objects.for_tenant(tenant).filter(slug=slug).first()
    if project is None:
        raise _unknown_project(slug)
    return project


def _sort_budgets(budgets: list[Budget]) -> list[Budget]:
    # Report stages from the widest scope to the narrowest, deterministically.
    return sorted(budgets, key=lambda b: (b.project_id is not None, bool(b.environment), b.id))


def _create_missing_periods(tenant: Tenant, budgets: list[Budget], today: date) -> None:
    """The first decision of a period creates its row (a concurrent creator is ignored)."""
    rows = []
    for budget in budgets:
        start, end = period_bounds(budget.period, today)
        rows.append(
            BudgetPeriod(
                budget=budget,
                tenant=tenant,
                period_start=start,
                period_end=end,
                limit_micros=budget.limit_micros,
            )
        )
    BudgetPeriod.objects.bulk_create(rows, ignore_conflicts=True)


def _load_orm(tenant, req: GateRequest, project_slug, environment) -> _Loaded | Decision:
    """The portable read-and-lock (SQLite, or PostgreSQL with GATE_SQL_FUNCTIONS off)."""
    project = _project(tenant, project_slug)
    existing = _find(tenant, req.source, req.idempotency_key)
    if existing is not None:
        return existing
    policy = active_policy(tenant.id)
    now = _begin_decision(policy, req)
    today = now.date()
    budgets = _covering_budgets(tenant, project, environment)
    keys = [(b.id, period_bounds(b.period, today)[0]) for b in budgets]
    periods = {p.budget_id: p for p in lock_current_periods(keys)} if keys else {}
    if len(periods) < len(keys):  # first decision of a period: create it, then lock it
        _create_missing_periods(tenant, [b for b in budgets if b.id not in periods], today)
        periods = {p.budget_id: p for p in lock_current_periods(keys)}
    month_start, _ = period_bounds("monthly", today)
    rollups = dict(
        SpendRollup.objects.filter(
            tenant=tenant,
            project=project,
            environment=environment,
            day__gte=month_start,
            day__lte=today,
        ).values_list("day", "spent_micros")
    )
    return _Loaded(
        now=now,
        project=project,
        policy=policy,
        budgets=budgets,
        periods=[periods[b.id] for b in budgets],
        rollups=rollups,
    )


_PREPARE_SQL = "SELECT tollgate_gate_prepare(%s, %s, %s, %s, %s, %s, %s, %s)"


def _prepare(cursor, tenant, req, project_slug, environment, policy: CompiledPolicy) -> dict:
    cursor.execute(
        _PREPARE_SQL,
        [
            tenant.id,
            project_slug,
            environment,
            req.source,
            req.idempotency_key,
            None if policy.version is None else policy.sha256,
            _deadline_ms(policy, req),
            GENESIS_HASH,
        ],
    )
    raw = cursor.fetchone()[0]
    return json.loads(raw) if isinstance(raw, str) else raw


def _published(tenant_id: str, published: dict | None) -> CompiledPolicy:
    if published is None:
        return published_policy(tenant_id, None, None)
    return published_policy(tenant_id, published["version"], published["sha256"])


def _load_sql(tenant, req, project_slug, environment, policy) -> _Loaded | Decision:
    """PostgreSQL: policy version, project, idempotency, covering budgets, locked periods, chain
    heads and rollups in one function call.

    A second call only when the published policy is not the one this process last used (its
    deadline must bound the lock waits, so the function checks before taking any lock) or for
    a period's first decision (the periods are created, then locked).
    """
    with connection.cursor() as cursor:
        for _ in range(3):
            data = _prepare(cursor, tenant, req, project_slug, environment, policy)
            if data.get("policy_changed"):
                policy = _published(tenant.id, data["policy"])
                continue
            if data["project"] is None:
                raise _unknown_project(project_slug)
            if data.get("existing"):
                return Decision.objects.get(pk=data["existing"])
            if not data.get("missing_periods"):
                break
            budgets = [_budget_from(row, tenant.id) for row in data["budgets"]]
            _create_missing_periods(tenant, budgets, parse_datetime(data["now"]).date())
        else:  # the policy changed under us twice in a row, or the periods keep vanishing
            raise CannotDecide("error", "the policy or budgets kept changing")
        policy = _published(tenant.id, data["policy"])  # same sha; the version may be newer
    budgets = _sort_budgets([_budget_from(row, tenant.id) for row in data["budgets"]])
    periods = {
        row["budget_id"]: BudgetPeriod(
            id=row["id"],
            budget_id=row["budget_id"],
            tenant_id=tenant.id,
            period_start=date.fromisoformat(row["period_start"]),
            period_end=date.fromisoformat(row["period_end"]),
            limit_micros=row["limit_micros"],
            reserved_micros=row["reserved_micros"],
            spent_micros=row["spent_micros"],
        )
        for row in data["periods"]
    }
    project = Project(id=data["project"], tenant_id=tenant.id, slug=project_slug)
    project._state.adding = False
    return _Loaded(
        now=parse_datetime(data["now"]),
        project=project,
        policy=policy,
        budgets=budgets,
        periods=[periods[b.id] for b in budgets],
        rollups={date.fromisoformat(day): int(v) for day, v in data["rollups"].items()},
        heads={chain: (int(seq), head) for chain, (seq, head) in data["heads"].items()},
    )


def _budget_from(row: dict, tenant_id: str) -> Budget:
    budget = Budget(
        id=row["id"],
        tenant_id=tenant_id,
        project_id=row["project_id"],
        environment=row["environment"],
        period=row["period"],
        limit_micros=row["limit_micros"],
    )
    budget._state.adding = False
    return budget


def _check_cost(req: GateRequest) -> None:
    if req.estimated_micros is None and req.monthly_micros is None:
        raise TollgateError(
            EnforcementErrorCode.COST_REQUIRED,
            "Send estimated_cost_usd (what to reserve now) or monthly_delta_usd.",
            errors=[{"field": "estimated_cost_usd", "message": "Required.", "code": "required"}],
        )


def _checked_ttl(req: GateRequest, policy: CompiledPolicy) -> int:
    ttl = req.ttl_seconds if req.ttl_seconds is not None else policy.default_ttl_seconds
    if not 1 <= ttl <= policy.max_ttl_seconds:
        raise TollgateError(
            EnforcementErrorCode.TTL_OUT_OF_RANGE,
            f"ttl_seconds must be between 1 and {policy.max_ttl_seconds} (policy).",
            errors=[{"field": "ttl_seconds", "message": "Out of range.", "code": "invalid"}],
        )
    return ttl


def _continue_with_token(tenant, req: GateRequest, project, environment, fp) -> GateResult:
    """The approved continuation of a REQUIRE_APPROVAL decision (see services.continuation)."""
    _check_cost(req)
    ttl = _checked_ttl(req, active_policy(tenant.id))
    response, created = continuation.gate_continue(
        tenant=tenant,
        token=req.approval_token,
        source=req.source,
        idempotency_key=req.idempotency_key,
        project=project,
        environment=environment,
        fingerprint=fp,
        amount_micros=_amount(req, db_now().date()),
        ttl_seconds=ttl,
        request_record=_request_record(req, project.slug, environment),
    )
    if created:
        GATE_DECISIONS.labels(source=req.source, outcome="ALLOW", mode=response["mode"]).inc()
    return GateResult(response=response, created=created)


def _covering_budgets(tenant: Tenant, project: Project, environment: str) -> list[Budget]:
    scope = (
        Q(project__isnull=True)
        | Q(project=project, environment="")
        | Q(project=project, environment=environment)
    )
    return _sort_budgets(list(Budget.objects.filter(tenant=tenant).filter(scope)))


def _amount(req: GateRequest, today, period: str = "monthly") -> int:
    if req.estimated_micros is not None:
        return req.estimated_micros
    days, left = days_left_including_today(period, today)
    return engine.prorate_monthly(req.monthly_micros, days_in_period=days, days_left=left)


def _decide_locked(
    *, loaded: _Loaded, tenant, environment, req, fp, ttl, deadline, api_key=None
) -> GateResult:
    now, project, policy = loaded.now, loaded.project, loaded.policy
    today = now.date()
    ordered_periods = loaded.periods

    amount = _amount(req, today)
    env_class = policy.env_class(environment)
    mode = policy.mode(req.source, env_class)
    budget_snaps = tuple(
        engine.BudgetSnap(
            ref=p.id, limit=p.limit_micros, reserved=p.reserved_micros, spent=p.spent_micros
        )
        for p in ordered_periods
    )
    grants: list[CreditGrant] = []
    if engine.waterfall_reaches_credits(
        amount=amount,
        budgets=budget_snaps,
        credits_only_possible=any(r.then == "allow_with_credits_only" for r in policy.rules),
    ):
        if engine.mode_draws_credits(engine.Mode(mode)):
            grants = lock_drawable_grants(tenant_id=tenant.id, now=now)
        else:  # shadow never draws: read the same grants, unlocked, only to explain
            drawable = CreditGrant.objects.filter(tenant_id=tenant.id).drawable(now)
            grants = list(drawable.order_by("id"))

    snapshot = engine.Snapshot(
        budgets=budget_snaps,
        grants=tuple(
            engine.GrantSnap(
                ref=g.id,
                pool=g.pool,
                remaining=g.remaining_micros,
                priority=g.priority,
                expires_at=g.expires_at,
                created_at=g.created_at,
            )
            for g in grants
        ),
    )
    context = _context(loaded.rollups, today, ordered_periods)
    record = _request_record(req, project.slug, environment)
    evaluation = evaluate(
        policy,
        request=engine.DecisionRequest(
            amount=amount,
            source=req.source,
            environment=environment,
            env_class=engine.EnvClass(env_class),
            project=project.slug,
        ),
        record=record,
        snapshot=snapshot,
        context=context,
    )
    outcome = evaluation.outcome
    if time.perf_counter() > deadline:
        raise CannotDecide("deadline", f"evaluation exceeded {_deadline_ms(policy, req)} ms")
    if evaluation.rule_errors:
        for error in evaluation.rule_errors:
            POLICY_RULE_ERRORS.labels(rule_id=error["rule_id"]).inc()
            log.warning("policy_rule_error", tenant=tenant.id, **error)
    period_by_id = {p.id: p for p in ordered_periods}
    budget_of_period = {p.id: p.budget_id for p in ordered_periods}

    decision = Decision(
        tenant=tenant,
        source=req.source,
        idempotency_key=req.idempotency_key,
        fingerprint=fp,
        project=project,
        environment=environment,
        outcome=str(outcome.outcome),
        evaluated_outcome=str(outcome.evaluated_outcome),
        mode=mode,
        enforced=outcome.enforced,
        reason_code=outcome.reason_code,
        amount_micros=amount,
        request=record,
        response={},
        waterfall=[],
        context=context,
        policy_version=policy.version,
        policy_sha256=policy.sha256,
        fail_open=False,  # a decision was made; only _cannot_decide answers by the fail mode
        snapshot=snapshot_to_dict(snapshot),
        created_at=now,
    )
    reservation = None
    allocations: list[ReservationAllocation] = []
    if outcome.draws:
        reservation = Reservation(
            tenant=tenant,
            decision=decision,
            amount_micros=amount,
            expires_at=now + timedelta(seconds=ttl),
            created_at=now,
        )
        for position, draw in enumerate(outcome.draws):
            allocations.append(
                ReservationAllocation(
                    reservation=reservation,
                    budget_period_id=draw.ref if draw.kind == "budget" else None,
                    credit_grant_id=draw.ref if draw.kind == "credit" else None,
                    amount_micros=draw.amount,
                    position=position,
                )
            )
    approval = None
    if outcome.requires_approval:
        approval = approvals.approval_build(
            tenant=tenant,
            decision=decision,
            reservation=reservation,
            routing=policy.approval_routing(rule_id=outcome.rule_id, env_class=env_class),
            requester=req.requester,
            api_key=api_key,
            now=now,
        )
    waterfall = [
        {
            "stage": str(stage.stage),
            "ref": budget_of_period.get(stage.ref, stage.ref),
            "period_id": stage.ref if stage.ref in period_by_id else None,
            "passed": stage.passed,
            "headroom_usd": _money(stage.headroom),
            "drawn_usd": format_usd(stage.drawn),
        }
        for stage in outcome.stages
    ]
    response = {
        "decision_id": decision.id,
        "outcome": str(outcome.outcome),
        "evaluated_outcome": str(outcome.evaluated_outcome),
        "mode": mode,
        "enforced": outcome.enforced,
        "breach": outcome.breach,
        "reason_code": outcome.reason_code,
        "message": outcome.message,
        "remediation": outcome.remediation,
        "fingerprint": fp,
        "idempotent_replay": False,
        "amount_usd": format_usd(amount),
        "project": project.slug,
        "environment": environment,
        "reservation": _reservation_body(reservation, allocations, budget_of_period),
        "approval": approvals.approval_summary(approval) if approval else None,
        "waterfall": waterfall,
        "context": context,
        "rule_errors": list(evaluation.rule_errors),
        "rule_id": outcome.rule_id,
        "policy": {"version": policy.version, "sha256": policy.sha256},
        "fail_open": False,
        "created_at": now.isoformat(),
    }
    decision.response = response
    decision.waterfall = waterfall
    event = OutboxEvent(
        tenant_id=tenant.id,
        event_type="decision.created",
        payload={
            "decision_id": decision.id,
            "outcome": response["outcome"],
            "reason_code": response["reason_code"],
            "mode": mode,
            "project": project.slug,
            "environment": environment,
            "amount_usd": response["amount_usd"],
            "reservation_id": reservation.id if reservation else None,
        },
        created_at=now,
    )
    entries = _ledger_entries(tenant, decision, outcome, ordered_periods, project, environment)
    if loaded.heads is not None:
        _write_sql(decision, reservation, allocations, outcome.draws, entries, loaded.heads, event)
    else:
        decision.save(force_insert=True)
        if reservation is not None:
            reservation.save(force_insert=True)
            ReservationAllocation.objects.bulk_create(allocations)
        _apply_draws(outcome.draws)
        for chain, payload in entries:
            ledger_append(
                tenant_id=tenant.id,
                chain=chain,
                kind="decision.recorded",
                payload=payload,
                recorded_at=now,
            )
        event.save(force_insert=True)
    if approval is not None:
        approvals.approval_open(approval=approval)  # control chain head after the period chains
    return GateResult(response=response, created=True)


def _apply_draws(draws) -> None:
    from django.db.models import F

    for draw in draws:
        if draw.kind == "budget":
            BudgetPeriod.objects.filter(pk=draw.ref).update(
                reserved_micros=F("reserved_micros") + draw.amount
            )
        else:
            CreditGrant.objects.filter(pk=draw.ref).update(
                remaining_micros=F("remaining_micros") - draw.amount
            )


def _ledger_entries(tenant, decision, outcome, periods, project, environment) -> list:
    """(chain, payload) per covering budget period chain (already locked), else the scope chain."""
    drawn = {d.ref: d.amount for d in outcome.draws}
    credits = [{"grant": d.ref, "amount": d.amount} for d in outcome.draws if d.kind == "credit"]
    base = {
        "decision": decision.id,
        "outcome": decision.outcome,
        "reason_code": decision.reason_code,
        "mode": decision.mode,
        "amount": decision.amount_micros,
        "credits": credits,
    }
    if not periods:
        return [(scope_chain(project.id, environment), base)]
    return [
        (budget_period_chain(period.id), {**base, "reserved_delta": drawn.get(period.id, 0)})
        for period in periods
    ]


def _jsonable(value):
    if isinstance(value, datetime | date):
        return value.isoformat()  # full microseconds: ledger hashes cover them
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _row(instance) -> dict:
    """A model instance as {column: value} for ``jsonb_populate_record`` (every column)."""
    return {f.column: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


_WRITE_SQL = "SELECT tollgate_gate_write(%s::jsonb)"


def _write_sql(decision, reservation, allocations, draws, entries, heads, event) -> None:
    """PostgreSQL: every row of the decision in one function call (one round trip)."""
    ledger = []
    for chain, payload in entries:
        head_seq, head_hash = heads[chain]
        entry = next_entry(
            decision.tenant_id,
            chain,
            "decision.recorded",
            payload,
            head_seq,
            head_hash,
            decision.created_at,
        )
        ledger.append(_row(entry))
    body = {
        "decision": _row(decision),
        "reservation": _row(reservation) if reservation is not None else None,
        "allocations": [_row(a) for a in allocations],
        "budget_draws": [{"id": d.ref, "amount": d.amount} for d in draws if d.kind == "budget"],
        "credit_draws": [{"id": d.ref, "amount": d.amount} for d in draws if d.kind == "credit"],
        "ledger": ledger,
        "outbox": _row(event),
    }
    with connection.cursor() as cursor:
        cursor.execute(_WRITE_SQL, [json.dumps(body, default=_jsonable, separators=(",", ":"))])
    for instance in (decision, reservation, event, *allocations):
        if instance is not None:
            instance._state.adding = False
            instance._state.db = connection.alias


def _context(rollups: dict, today, periods) -> dict:
    month_start, month_end = period_bounds("monthly", today)
    tightest = min(periods, key=lambda p: (p.available_micros, p.id), default=None)
    ctx = compute_context(
        daily_spend=rollups,
        period_start=month_start,
        period_end=month_end,
        today=today,
        budget_limit=tightest.limit_micros if tightest else None,
        pending=tightest.reserved_micros if tightest else 0,
    )
    return ctx.to_dict()


def _request_record(req: GateRequest, project: str, environment: str) -> dict:
    return {
        "source": req.source,
        "project": project,
        "environment": environment,
        "action": req.action,
        "resource": req.resource,
        "estimated_cost_usd": _money(req.estimated_micros),
        "monthly_delta_usd": _money(req.monthly_micros),
        "hourly_delta_usd": _money(req.hourly_micros),
        "labels": req.labels,
        "requester": req.requester,
        "ttl_seconds": req.ttl_seconds,
        "idempotency_key": req.idempotency_key,
    }


def _reservation_body(reservation, allocations, budget_of_period) -> dict | None:
    if reservation is None:
        return None
    return {
        "id": reservation.id,
        "amount_usd": format_usd(reservation.amount_micros),
        "state": reservation.state,
        "expires_at": reservation.expires_at.isoformat(),
        "allocations": [
            {
                "kind": a.kind,
                "ref": budget_of_period.get(a.ref, a.ref),
                "period_id": a.budget_period_id,
                "amount_usd": format_usd(a.amount_micros),
            }
            for a in allocations
        ],
    }
