"""The decide seam: from the loaded rows to an evaluated outcome and the rows it would write.

No write happens here: ``Decided`` holds unsaved model instances, the ledger payloads and the
answer; ``persist`` writes them (or, for a dry run, nothing does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from controlplane.audit.models import OutboxEvent
from controlplane.core.money import format_usd
from enforcement import engine
from enforcement.context import compute_context
from enforcement.metrics import POLICY_RULE_ERRORS
from enforcement.models import ApprovalRequest, Decision, Reservation, ReservationAllocation
from enforcement.periods import period_bounds
from enforcement.policy.evaluate import evaluate, snapshot_to_dict
from enforcement.services import approvals
from enforcement.services.gate.answer import gate_answer, reservation_body, waterfall_body
from enforcement.services.gate.load import Loaded, decision_chains
from enforcement.services.gate.request import CannotDecide, GateRequest, amount, request_record
from enforcement.services.locking import drawable_grants

log = structlog.get_logger(__name__)


@dataclass
class Decided:
    """A decision made and not yet written: its rows, ledger payloads and answer."""

    decision: Decision
    outcome: engine.Outcome
    reservation: Reservation | None
    allocations: list[ReservationAllocation]
    approval: ApprovalRequest | None
    ledger: list[tuple[str, dict]]  # (chain, payload) per period chain, else the scope chain
    event: OutboxEvent
    response: dict = field(default_factory=dict)


def _snapshot(loaded: Loaded, tenant, amount_micros: int, mode: str) -> engine.Snapshot:
    """Balances as the engine sees them; the drawable grants only when credits may be reached."""
    budgets = tuple(
        engine.BudgetSnap(
            ref=p.id, limit=p.limit_micros, reserved=p.reserved_micros, spent=p.spent_micros
        )
        for p in loaded.periods
    )
    grants = []
    if engine.waterfall_reaches_credits(
        amount=amount_micros,
        budgets=budgets,
        credits_only_possible=any(r.then == "allow_with_credits_only" for r in loaded.policy.rules),
    ):
        # Shadow never draws: it reads the same grants unlocked, only to explain.
        lock = engine.mode_draws_credits(engine.Mode(mode))
        grants = drawable_grants(tenant_id=tenant.id, now=loaded.now, lock=lock)
    return engine.Snapshot(
        budgets=budgets,
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


def decide(
    *,
    loaded: Loaded,
    tenant,
    environment: str,
    req: GateRequest,
    fp: str,
    ttl: int,
    started,
    api_key,
) -> Decided:
    """Evaluate the call against the locked balances; build (unsaved) everything it writes."""
    now, project, policy = loaded.now, loaded.project, loaded.policy
    amount_micros = amount(req, now.date())
    env_class = policy.env_class(environment)
    mode = policy.mode(req.source, env_class)
    snapshot = _snapshot(loaded, tenant, amount_micros, mode)
    context = _context(loaded.rollups, now.date(), loaded.periods)
    record = request_record(req, project.slug, environment)
    evaluation = evaluate(
        policy,
        request=engine.DecisionRequest(
            amount=amount_micros,
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
    if time.perf_counter() > started + loaded.deadline_ms / 1000:
        raise CannotDecide("deadline", f"evaluation exceeded {loaded.deadline_ms} ms")
    for error in evaluation.rule_errors:
        POLICY_RULE_ERRORS.labels(rule_id=error["rule_id"]).inc()
        log.warning("policy_rule_error", tenant=tenant.id, **error)
    budget_of_period = {p.id: p.budget_id for p in loaded.periods}

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
        amount_micros=amount_micros,
        request=record,
        response={},
        policy_version=policy.version,
        policy_sha256=policy.sha256,
        fail_open=False,  # a decision was made; only gate_fail_answer answers by the fail mode
        snapshot=snapshot_to_dict(snapshot),
        created_at=now,
    )
    reservation = None
    allocations: list[ReservationAllocation] = []
    if outcome.draws:
        reservation = Reservation(
            tenant=tenant,
            decision=decision,
            amount_micros=amount_micros,
            expires_at=now + timedelta(seconds=ttl),
            created_at=now,
        )
        allocations = [
            ReservationAllocation(
                reservation=reservation,
                budget_period_id=draw.ref if draw.kind == "budget" else None,
                credit_grant_id=draw.ref if draw.kind == "credit" else None,
                amount_micros=draw.amount,
                position=position,
            )
            for position, draw in enumerate(outcome.draws)
        ]
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
    waterfall = waterfall_body(outcome.stages, budget_of_period)
    dry = req.dry_run
    response = gate_answer(
        decision_id=None if dry else decision.id,
        outcome=str(outcome.outcome),
        evaluated_outcome=str(outcome.evaluated_outcome),
        mode=mode,
        enforced=outcome.enforced,
        breach=outcome.breach,
        reason_code=outcome.reason_code,
        message=outcome.message,
        remediation=outcome.remediation,
        fingerprint=fp,
        amount_usd=format_usd(amount_micros),
        project=project.slug,
        environment=environment,
        reservation=None if dry else reservation_body(reservation, allocations, budget_of_period),
        approval=approvals.approval_summary(approval) if approval and not dry else None,
        waterfall=waterfall,
        context=context,
        rule_errors=evaluation.rule_errors,
        rule_id=outcome.rule_id,
        policy={"version": policy.version, "sha256": policy.sha256},
        created_at=now.isoformat(),
        dry_run=dry,
    )
    decision.response = response
    # A reference: the webhook's data is built from the decision at delivery (decision_event_data).
    event = OutboxEvent(
        tenant_id=tenant.id,
        event_type="decision.created",
        payload={"decision_id": decision.id},
        created_at=now,
    )
    return Decided(
        decision=decision,
        outcome=outcome,
        reservation=reservation,
        allocations=allocations,
        approval=approval,
        ledger=_ledger_entries(decision, outcome, loaded.periods, environment),
        event=event,
        response=response,
    )


def _ledger_entries(decision, outcome, periods, environment) -> list:
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
    chains = decision_chains(periods, decision.project_id, environment)
    if not periods:
        return [(chains[0], base)]
    return [
        (chain, {**base, "reserved_delta": drawn.get(period.id, 0)})
        for chain, period in zip(chains, periods, strict=True)
    ]
