"""Evaluate a compiled policy against one request and a snapshot. Pure: no ORM, no clock, no I/O.

Order: the rules in document order, first match wins (its ``then`` shapes the outcome), then the
budget waterfall in ``engine.decide``. A rule that fails at run time (e.g. a type mismatch, a
missing key) stops evaluation: the policy's ``on_rule_error`` answer for the environment class
(deny unless the policy says allow) decides, and the error is returned so the caller can record
and count it. A rule error is never the gate's fail mode: request data can cause one. Same
request + same snapshot + same policy hash always gives the same result, with one exception: the
run-time budget guard (a monotonic timer, see ``match_rules``), which only an evaluation far
slower than its validated cost bound can trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cel

from enforcement import engine
from enforcement.policy.compiled import CompiledPolicy

RULE_ERROR_REASON = "POLICY_RULE_ERROR"
# The run-time guard. Validation bounds a rule's cost (enforcement.policy.celcost: the worst
# admissible rule runs in ~5 ms, a whole policy in ~25 ms); the CEL library holds the GIL and
# cannot be interrupted, so the guard acts after the fact: a rule that took longer than this,
# or rules that together took longer, answer as a rule error instead of their result.
RULE_BUDGET_SECONDS = 0.025
RULES_BUDGET_SECONDS = 0.100
_timer = time.perf_counter  # a monotonic clock for the guard only (tests replace it)


@dataclass(frozen=True, slots=True)
class PolicyEvaluation:
    outcome: engine.Outcome
    env_class: str
    rule_errors: tuple[dict[str, str], ...] = field(default_factory=tuple)


def _usd(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000


def _usd_value(text: str | None) -> float | None:
    return None if text is None else float(text)


def _resource(resource: dict[str, Any]) -> dict[str, Any]:
    """Always type, id and attributes (a map), so rules can test attributes without has()."""
    return {
        "type": resource.get("type") or "",
        "id": resource.get("id") or "",
        "attributes": resource.get("attributes") or {},
    }


def activation(
    *,
    request: engine.DecisionRequest,
    record: dict[str, Any],
    snapshot: engine.Snapshot,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The CEL variables. Money is a double in USD; absent optional fields are absent keys."""
    req: dict[str, Any] = {
        "source": request.source,
        "project": request.project,
        "environment": request.environment,
        "env_class": str(request.env_class),
        "action": record.get("action", ""),
        "resource": _resource(record.get("resource") or {}),
        "labels": record.get("labels") or {},
        "requester": record.get("requester", ""),
        "amount_usd": _usd(request.amount),
    }
    for name in ("estimated_cost_usd", "monthly_delta_usd", "hourly_delta_usd"):
        if record.get(name) is not None:
            req[name] = _usd_value(record[name])
    ctx = {
        "mtd_spend_usd": _usd_value(context.get("mtd_spend_usd")) or 0.0,
        "burn_rate_daily_usd": _usd_value(context.get("burn_rate_daily_usd")) or 0.0,
        "forecast_eom_usd": _usd_value(context.get("forecast_eom_usd")) or 0.0,
        "risk_score": float(context.get("risk_score") or 0.0),
        "risk_class": context.get("risk_class", "low"),
    }
    tightest = min(snapshot.budgets, key=lambda b: (b.headroom, b.ref), default=None)
    if tightest is None:
        budget = {
            "exists": False,
            "count": 0,
            "limit_usd": 0.0,
            "reserved_usd": 0.0,
            "spent_usd": 0.0,
            "available_usd": 0.0,
            "utilization": 0.0,
        }
    else:
        used = tightest.reserved + tightest.spent
        budget = {
            "exists": True,
            "count": len(snapshot.budgets),
            "limit_usd": _usd(tightest.limit),
            "reserved_usd": _usd(tightest.reserved),
            "spent_usd": _usd(tightest.spent),
            "available_usd": _usd(tightest.headroom),
            "utilization": round(used / tightest.limit, 6) if tightest.limit else 1.0,
        }
    return {"request": req, "context": ctx, "budget": budget}


def match_rules(
    policy: CompiledPolicy,
    variables: dict[str, Any],
    *,
    timer: Callable[[], float] | None = None,
) -> tuple[engine.RuleOutcome | None, dict[str, str] | None]:
    """First matching rule, or the first rule error (evaluation stops there)."""
    if not policy.rules:
        return None, None
    timer = timer or _timer
    # One CEL context per decision: the variables are converted to CEL values once and reused
    # by every rule (a plain dict would be converted again for each rule).
    try:
        shared = cel.Context(variables)
    except Exception as exc:  # a value CEL cannot represent: the first rule cannot run
        return None, {"rule_id": policy.rules[0].id, "error": f"{type(exc).__name__}: {exc}"[:500]}
    started = timer()
    for rule in policy.rules:
        before = timer()
        try:
            result = rule.program.execute(shared)
        except Exception as exc:  # CEL raises TypeError/KeyError/ValueError/RuntimeError
            return None, {"rule_id": rule.id, "error": f"{type(exc).__name__}: {exc}"[:500]}
        after = timer()
        if after - before > RULE_BUDGET_SECONDS or after - started > RULES_BUDGET_SECONDS:
            return None, {
                "rule_id": rule.id,
                "error": f"evaluation budget exceeded: the rule took {(after - before) * 1000:.1f}"
                f" ms (budget {RULE_BUDGET_SECONDS * 1000:.0f} ms per rule, "
                f"{RULES_BUDGET_SECONDS * 1000:.0f} ms for all rules)",
            }
        if result is True:
            return (
                engine.RuleOutcome(
                    then=rule.then,
                    rule_id=rule.id,
                    reason_code=rule.reason_code,
                    message=rule.message,
                    remediation=rule.remediation,
                ),
                None,
            )
        if result is not False:
            return None, {
                "rule_id": rule.id,
                "error": f"the expression must be boolean, got {type(result).__name__}",
            }
    return None, None


def _rule_error_outcome(
    policy: CompiledPolicy, request: engine.DecisionRequest, mode: engine.Mode, error: dict
) -> engine.Outcome:
    env_class = str(request.env_class)
    answer = policy.on_rule_error(env_class)
    verdict = engine.Verdict.ALLOW if answer == "allow" else engine.Verdict.DENY
    enforcing = mode == engine.Mode.HARD
    outcome = verdict if enforcing else engine.Verdict.ALLOW
    if verdict == engine.Verdict.ALLOW:
        message = (
            f"Policy rule {error['rule_id']!r} failed to evaluate; the policy's {env_class} "
            "on_rule_error is allow, so this is allowed, flagged and nothing is reserved."
        )
    else:
        message = (
            f"Policy rule {error['rule_id']!r} failed to evaluate; the policy's {env_class} "
            "on_rule_error is deny, so this is denied."
        )
    return engine.Outcome(
        outcome=outcome,
        evaluated_outcome=verdict,
        mode=mode,
        enforced=enforcing and verdict == engine.Verdict.DENY,
        breach=True,
        reason_code=RULE_ERROR_REASON,
        message=message,
        remediation="Fix the rule (see rule_errors) and publish a new policy version; "
        "POST /api/v1/policies/simulate shows the effect first.",
        stages=(),
        draws=(),
        requires_approval=False,
        rule_id=error["rule_id"],
        amount=request.amount,
    )


def evaluate(
    policy: CompiledPolicy,
    *,
    request: engine.DecisionRequest,
    record: dict[str, Any],
    snapshot: engine.Snapshot,
    context: dict[str, Any],
) -> PolicyEvaluation:
    """Rules, then the waterfall, under the mode for this source and environment class."""
    env_class = str(request.env_class)
    mode = engine.Mode(policy.mode(request.source, env_class))
    variables = activation(request=request, record=record, snapshot=snapshot, context=context)
    rule, error = match_rules(policy, variables)
    if error is not None:
        outcome = _rule_error_outcome(policy, request, mode, error)
        return PolicyEvaluation(outcome, env_class, (error,))
    outcome = engine.decide(
        request,
        engine.EffectiveSettings(
            mode=mode,
            approval_threshold=policy.approval_threshold,
            plan_ceiling=policy.plan_ceiling,
            enterprise_ceiling=policy.enterprise_ceiling,
            unbudgeted=policy.unbudgeted,
            policy_outcome=rule,
        ),
        snapshot,
    )
    return PolicyEvaluation(outcome, env_class)


def snapshot_to_dict(snapshot: engine.Snapshot) -> dict[str, Any]:
    """What a decision stores so simulation can replay it against another policy."""
    return {
        "budgets": [
            {"ref": b.ref, "limit": b.limit, "reserved": b.reserved, "spent": b.spent}
            for b in snapshot.budgets
        ],
        "grants": [
            {
                "ref": g.ref,
                "pool": g.pool,
                "remaining": g.remaining,
                "priority": g.priority,
                "expires_at": g.expires_at.isoformat() if g.expires_at else None,
                "created_at": g.created_at.isoformat(),
            }
            for g in snapshot.grants
        ],
    }


def snapshot_from_dict(data: dict[str, Any]) -> engine.Snapshot:
    from datetime import datetime

    return engine.Snapshot(
        budgets=tuple(
            engine.BudgetSnap(
                ref=b["ref"], limit=b["limit"], reserved=b["reserved"], spent=b["spent"]
            )
            for b in data.get("budgets", [])
        ),
        grants=tuple(
            engine.GrantSnap(
                ref=g["ref"],
                pool=g["pool"],
                remaining=g["remaining"],
                priority=g["priority"],
                expires_at=datetime.fromisoformat(g["expires_at"]) if g["expires_at"] else None,
                created_at=datetime.fromisoformat(g["created_at"]),
            )
            for g in data.get("grants", [])
        ),
    )
