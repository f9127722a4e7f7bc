"""The pure decision engine: no Django, no ORM, no clock, no I/O. Money is int micro-dollars.

Waterfall, in order (each stage reports passed / headroom / drawn):
1. ``plan_ceiling``: a per-request cap from the plan. Fails -> DENY PLAN_CEILING_EXCEEDED.
2. ``budget``: one stage per covering budget period. headroom = limit - reserved - spent.
   capacity = min(max(headroom, 0)). If amount <= capacity, every budget draws ``amount``
   (nested scopes each count the same spend). Otherwise every budget draws ``capacity`` and the
   shortfall goes to credits. No covering budget: ``unbudgeted`` decides (allow -> UNBUDGETED,
   deny -> DENY NO_BUDGET).
3. ``reserved_credits`` then 4. ``emergency_credits`` cover the shortfall in burn order
   (priority asc, expiry soonest first with none last, created_at, ref). If the shortfall is not
   covered -> DENY BUDGET_EXCEEDED and nothing is drawn.
5. ``enterprise_ceiling``: an absolute per-request cap. Fails -> DENY ENTERPRISE_CEILING_EXCEEDED.
Then approval: ALLOW* with amount >= approval_threshold (or a rule saying so) becomes
REQUIRE_APPROVAL, keeping the draws (the money is held while people decide).
Modes: ``hard`` enforces; ``soft`` answers ALLOW, flags the breach and draws the amount from every
covering budget (overdrawing on purpose: the spend will happen); ``shadow`` answers ALLOW and
draws nothing. ``evaluated_outcome`` is always what hard mode would have answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    SHADOW = "shadow"
    SOFT = "soft"
    HARD = "hard"


class EnvClass(StrEnum):
    PROD = "prod"
    NONPROD = "nonprod"


class Verdict(StrEnum):
    ALLOW = "ALLOW"
    ALLOW_WITH_CREDITS = "ALLOW_WITH_CREDITS"
    REQUIRE_APPROVAL = "REQUIRE_APPROVAL"
    DENY = "DENY"


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    then: str  # allow | deny | require_approval | allow_with_credits_only
    rule_id: str
    reason_code: str = ""
    message: str = ""
    remediation: str = ""


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    amount: int
    source: str
    environment: str
    env_class: EnvClass
    project: str


@dataclass(frozen=True, slots=True)
class EffectiveSettings:
    mode: Mode
    approval_threshold: int | None = None
    plan_ceiling: int | None = None
    enterprise_ceiling: int | None = None
    unbudgeted: str = "allow"
    policy_outcome: RuleOutcome | None = None


@dataclass(frozen=True, slots=True)
class BudgetSnap:
    ref: str
    limit: int
    reserved: int
    spent: int

    @property
    def headroom(self) -> int:
        return self.limit - self.reserved - self.spent


@dataclass(frozen=True, slots=True)
class GrantSnap:
    ref: str
    pool: str
    remaining: int
    priority: int
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    budgets: tuple[BudgetSnap, ...] = ()
    grants: tuple[GrantSnap, ...] = ()


@dataclass(frozen=True, slots=True)
class Stage:
    stage: str
    ref: str
    passed: bool
    headroom: int | None
    drawn: int


@dataclass(frozen=True, slots=True)
class Draw:
    kind: str  # budget | credit
    ref: str
    amount: int


@dataclass(frozen=True, slots=True)
class Outcome:
    outcome: Verdict
    evaluated_outcome: Verdict
    mode: Mode
    enforced: bool
    breach: bool
    reason_code: str
    message: str
    remediation: str
    stages: tuple[Stage, ...]
    draws: tuple[Draw, ...]
    requires_approval: bool
    rule_id: str | None
    amount: int

    @property
    def reserved_total(self) -> int:
        return self.amount if self.draws else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "evaluated_outcome": str(self.evaluated_outcome),
            "mode": str(self.mode),
            "enforced": self.enforced,
            "breach": self.breach,
            "reason_code": self.reason_code,
            "message": self.message,
            "remediation": self.remediation,
            "stages": [
                {
                    "stage": s.stage,
                    "ref": s.ref,
                    "passed": s.passed,
                    "headroom": s.headroom,
                    "drawn": s.drawn,
                }
                for s in self.stages
            ],
            "draws": [{"kind": d.kind, "ref": d.ref, "amount": d.amount} for d in self.draws],
            "requires_approval": self.requires_approval,
            "rule_id": self.rule_id,
            "amount": self.amount,
        }


def usd(micros: int) -> str:
    """Micro-dollars as a USD string with 2..6 decimals (local: the engine imports nothing)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{f'{frac:06d}'.rstrip('0').ljust(2, '0')}"


def prorate_monthly(monthly: int, *, days_in_period: int, days_left: int) -> int:
    """The part of a monthly amount for the days left (today included), rounded up."""
    if monthly < 0 or days_in_period <= 0 or not 0 <= days_left <= days_in_period:
        raise ValueError("invalid proration input")
    return -((-monthly * days_left) // days_in_period)


_FAR = (1, 0.0)


def _burn_key(grant: GrantSnap):
    expiry = (0, grant.expires_at.timestamp()) if grant.expires_at is not None else _FAR
    return (grant.priority, expiry, grant.created_at.timestamp(), grant.ref)


@dataclass(frozen=True, slots=True)
class _Plan:
    verdict: Verdict
    reason: str
    message: str
    remediation: str
    stages: tuple[Stage, ...]
    draws: tuple[Draw, ...]
    emergency: bool = False


def _deny(reason: str, message: str, remediation: str, stages: list[Stage]) -> _Plan:
    return _Plan(Verdict.DENY, reason, message, remediation, tuple(stages), ())


def _waterfall(req: DecisionRequest, cfg: EffectiveSettings, snap: Snapshot) -> _Plan:
    amount = req.amount
    stages: list[Stage] = []
    rule = cfg.policy_outcome
    if cfg.plan_ceiling is not None:
        ok = amount <= cfg.plan_ceiling
        stages.append(Stage("plan_ceiling", "plan", ok, cfg.plan_ceiling, 0))
        if not ok:
            return _deny(
                "PLAN_CEILING_EXCEEDED",
                f"{usd(amount)} USD is above the plan's per-request ceiling of "
                f"{usd(cfg.plan_ceiling)} USD.",
                "Split the change, or upgrade the plan for a higher ceiling.",
                stages,
            )
    credits_only = rule is not None and rule.then == "allow_with_credits_only"
    budgets = () if credits_only else snap.budgets
    if not snap.budgets and not credits_only and cfg.unbudgeted == "deny":
        return _deny(
            "NO_BUDGET",
            f"No budget covers {req.project}/{req.environment}, and unbudgeted spend is denied.",
            f"Create a budget for project {req.project!r} (or a tenant-wide one).",
            stages,
        )
    capacity = amount if not budgets else min(max(b.headroom, 0) for b in budgets)
    from_budget = min(amount, capacity) if not credits_only else 0
    budget_draws = []
    for budget in budgets:
        headroom = budget.headroom
        stages.append(Stage("budget", budget.ref, headroom >= amount, headroom, from_budget))
        if from_budget:
            budget_draws.append(Draw("budget", budget.ref, from_budget))
    shortfall = amount - from_budget
    credit_draws: list[Draw] = []
    used_emergency = False
    for pool, stage_name in (("reserved", "reserved_credits"), ("emergency", "emergency_credits")):
        pool_grants = sorted(
            (g for g in snap.grants if g.pool == pool and g.remaining > 0), key=_burn_key
        )
        available = sum(g.remaining for g in pool_grants)
        if shortfall == 0 and not pool_grants:
            continue
        drawn_here, refs = 0, []
        for grant in pool_grants:
            if shortfall == 0:
                break
            take = min(grant.remaining, shortfall)
            credit_draws.append(Draw("credit", grant.ref, take))
            refs.append(grant.ref)
            shortfall -= take
            drawn_here += take
        if drawn_here or shortfall:
            stages.append(Stage(stage_name, ",".join(refs), shortfall == 0, available, drawn_here))
        if pool == "emergency" and drawn_here:
            used_emergency = True
    if shortfall:
        tight = min(budgets, key=lambda b: (b.headroom, b.ref)) if budgets else None
        where = (
            f"budget {tight.ref} has {usd(max(tight.headroom, 0))} USD left"
            if tight
            else "no budget applies"
        )
        return _deny(
            "BUDGET_EXCEEDED",
            f"{usd(amount)} USD does not fit: {where} and credits cover only "
            f"{usd(amount - from_budget - shortfall)} USD of the rest.",
            "Raise the budget limit, add credits, or lower the estimate.",
            [*stages],
        )
    if cfg.enterprise_ceiling is not None:
        ok = amount <= cfg.enterprise_ceiling
        stages.append(Stage("enterprise_ceiling", "enterprise", ok, cfg.enterprise_ceiling, 0))
        if not ok:
            return _deny(
                "ENTERPRISE_CEILING_EXCEEDED",
                f"{usd(amount)} USD is above the enterprise per-request ceiling of "
                f"{usd(cfg.enterprise_ceiling)} USD.",
                "Split the change into smaller requests; the ceiling is contractual.",
                stages,
            )
    draws = tuple(budget_draws + credit_draws)
    if credit_draws:
        reason = "EMERGENCY_CREDITS_APPLIED" if used_emergency else "CREDITS_APPLIED"
        return _Plan(
            Verdict.ALLOW_WITH_CREDITS,
            reason,
            f"{usd(amount)} USD allowed: {usd(from_budget)} USD from budgets and "
            f"{usd(amount - from_budget)} USD from {'emergency ' if used_emergency else ''}credits.",
            "Raise the budget limit if this spend is expected to recur.",
            tuple(stages),
            draws,
            used_emergency,
        )
    if not snap.budgets:
        return _Plan(
            Verdict.ALLOW,
            "UNBUDGETED",
            f"{usd(amount)} USD allowed: no budget covers {req.project}/{req.environment}.",
            f"Create a budget for project {req.project!r} to govern this spend.",
            tuple(stages),
            draws,
        )
    return _Plan(
        Verdict.ALLOW,
        "WITHIN_BUDGET",
        f"{usd(amount)} USD fits within every covering budget.",
        "",
        tuple(stages),
        draws,
    )


def waterfall_reaches_credits(
    *, amount: int, budgets: tuple[BudgetSnap, ...], credits_only_possible: bool
) -> bool:
    """Whether the waterfall may get to the credit stages for this request: the amount exceeds
    the tightest budget's headroom, or an ``allow_with_credits_only`` rule may match."""
    if credits_only_possible:
        return True
    if not budgets:
        return False  # unbudgeted: capacity is the amount itself, nothing falls to credits
    return amount > min(max(b.headroom, 0) for b in budgets)


def mode_draws_credits(mode: Mode) -> bool:
    """Hard and soft modes draw the credits the waterfall plans (soft when nothing is
    breached); shadow draws nothing. The gate locks the drawable grants exactly when this and
    ``waterfall_reaches_credits`` both hold."""
    return mode in (Mode.HARD, Mode.SOFT)


def decide(request: DecisionRequest, settings: EffectiveSettings, snapshot: Snapshot) -> Outcome:
    """Evaluate one request deterministically against locked balances."""
    if request.amount < 0:
        raise ValueError("amount must be >= 0")
    for budget in snapshot.budgets:
        if budget.limit < 0 or budget.reserved < 0 or budget.spent < 0:
            raise ValueError(f"budget {budget.ref} has a negative counter")
    for grant in snapshot.grants:
        if grant.remaining < 0:
            raise ValueError(f"grant {grant.ref} has negative remaining")
    rule = settings.policy_outcome
    if rule is not None and rule.then == "deny":
        plan = _deny(
            rule.reason_code or "POLICY_DENIED",
            rule.message or f"Denied by policy rule {rule.rule_id}.",
            rule.remediation or "Change the request or ask the policy owner.",
            [],
        )
    else:
        plan = _waterfall(request, settings, snapshot)
    verdict, reason, message, remediation = (
        plan.verdict,
        plan.reason,
        plan.message,
        plan.remediation,
    )
    approval = False
    if verdict in (Verdict.ALLOW, Verdict.ALLOW_WITH_CREDITS):
        by_rule = rule is not None and rule.then == "require_approval"
        by_threshold = (
            settings.approval_threshold is not None
            and request.amount >= settings.approval_threshold
            and not (rule is not None and rule.then == "allow")
        )
        if by_rule or by_threshold:
            approval = True
            verdict = Verdict.REQUIRE_APPROVAL
            reason = rule.reason_code if by_rule and rule.reason_code else "APPROVAL_REQUIRED"
            message = (
                rule.message
                if by_rule and rule.message
                else f"{usd(request.amount)} USD needs approval"
                + (
                    f" (threshold {usd(settings.approval_threshold)} USD)."
                    if by_threshold
                    else f" (policy rule {rule.rule_id})."
                )
            )
            remediation = "Wait for an approver, then re-run with the approval token."
    evaluated = verdict
    mode = settings.mode
    if mode == Mode.HARD:
        outcome, enforced, breach = verdict, True, False
        draws = plan.draws if verdict != Verdict.DENY else ()
    elif mode == Mode.SOFT:
        breach = verdict in (Verdict.DENY, Verdict.REQUIRE_APPROVAL)
        outcome = Verdict.ALLOW if breach else verdict
        enforced = False
        if breach:
            draws = tuple(
                Draw("budget", b.ref, request.amount) for b in snapshot.budgets if request.amount
            )
        else:
            draws = plan.draws
    else:
        breach = verdict in (Verdict.DENY, Verdict.REQUIRE_APPROVAL)
        outcome, enforced, draws = Verdict.ALLOW, False, ()
    return Outcome(
        outcome=outcome,
        evaluated_outcome=evaluated,
        mode=mode,
        enforced=enforced,
        breach=breach,
        reason_code=reason,
        message=message,
        remediation=remediation,
        stages=plan.stages,
        draws=draws,
        requires_approval=approval and mode == Mode.HARD,
        rule_id=rule.rule_id if rule else None,
        amount=request.amount,
    )
