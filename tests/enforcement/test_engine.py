"""The pure engine, directly: every reason code, the waterfall's burn order, each ceiling, the
modes, and rounding at micro-dollar edges. No database, no Django."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from enforcement import engine
from enforcement.engine import (
    BudgetSnap,
    DecisionRequest,
    EffectiveSettings,
    EnvClass,
    GrantSnap,
    Mode,
    RuleOutcome,
    Snapshot,
    Verdict,
    decide,
    prorate_monthly,
    usd,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)
USD = 1_000_000


def budget(ref="bp_a", limit=100 * USD, reserved=0, spent=0) -> BudgetSnap:
    return BudgetSnap(ref=ref, limit=limit, reserved=reserved, spent=spent)


def grant(ref, remaining, *, pool="reserved", priority=100, expires=None, created=0) -> GrantSnap:
    return GrantSnap(
        ref=ref,
        pool=pool,
        remaining=remaining,
        priority=priority,
        expires_at=None if expires is None else T0 + timedelta(days=expires),
        created_at=T0 + timedelta(seconds=created),
    )


def request(amount: int) -> DecisionRequest:
    return DecisionRequest(
        amount=amount, source="api", environment="prod", env_class=EnvClass.PROD, project="pay"
    )


@dataclass
class Case:
    name: str
    amount: int
    budgets: tuple = ()
    grants: tuple = ()
    settings: dict = field(default_factory=dict)
    outcome: Verdict = Verdict.ALLOW
    reason: str = "WITHIN_BUDGET"
    draws: tuple = ()  # (kind, ref, amount)
    stages: tuple = ()  # (stage, passed, drawn)


CASES = [
    Case(
        "within budget",
        10 * USD,
        budgets=(budget(),),
        draws=(("budget", "bp_a", 10 * USD),),
        stages=(("budget", True, 10 * USD),),
    ),
    Case(
        "exactly the headroom fits",
        60 * USD,
        budgets=(budget(reserved=30 * USD, spent=10 * USD),),
        draws=(("budget", "bp_a", 60 * USD),),
        stages=(("budget", True, 60 * USD),),
    ),
    Case("unbudgeted allowed", 5 * USD, reason="UNBUDGETED", settings={"unbudgeted": "allow"}),
    Case(
        "unbudgeted denied",
        5 * USD,
        settings={"unbudgeted": "deny"},
        outcome=Verdict.DENY,
        reason="NO_BUDGET",
    ),
    Case(
        "over budget, no credits",
        101 * USD,
        budgets=(budget(),),
        outcome=Verdict.DENY,
        reason="BUDGET_EXCEEDED",
        stages=(
            ("budget", False, 100 * USD),
            ("reserved_credits", False, 0),
            ("emergency_credits", False, 0),
        ),
    ),
    Case(
        "reserved credits cover the shortfall",
        120 * USD,
        budgets=(budget(),),
        grants=(grant("crd_r", 50 * USD),),
        outcome=Verdict.ALLOW_WITH_CREDITS,
        reason="CREDITS_APPLIED",
        draws=(("budget", "bp_a", 100 * USD), ("credit", "crd_r", 20 * USD)),
        stages=(("budget", False, 100 * USD), ("reserved_credits", True, 20 * USD)),
    ),
    Case(
        "emergency credits after reserved ones",
        170 * USD,
        budgets=(budget(),),
        grants=(grant("crd_e", 50 * USD, pool="emergency"), grant("crd_r", 50 * USD)),
        outcome=Verdict.ALLOW_WITH_CREDITS,
        reason="EMERGENCY_CREDITS_APPLIED",
        draws=(
            ("budget", "bp_a", 100 * USD),
            ("credit", "crd_r", 50 * USD),
            ("credit", "crd_e", 20 * USD),
        ),
        stages=(
            ("budget", False, 100 * USD),
            ("reserved_credits", False, 50 * USD),
            ("emergency_credits", True, 20 * USD),
        ),
    ),
    Case(
        "credits not enough: nothing drawn",
        300 * USD,
        budgets=(budget(),),
        grants=(grant("crd_r", 50 * USD), grant("crd_e", 50 * USD, pool="emergency")),
        outcome=Verdict.DENY,
        reason="BUDGET_EXCEEDED",
        # The stages explain what each pool could give; a DENY draws nothing.
        stages=(
            ("budget", False, 100 * USD),
            ("reserved_credits", False, 50 * USD),
            ("emergency_credits", False, 50 * USD),
        ),
    ),
    Case(
        "plan ceiling: equal passes",
        10 * USD,
        budgets=(budget(),),
        settings={"plan_ceiling": 10 * USD},
        draws=(("budget", "bp_a", 10 * USD),),
        stages=(("plan_ceiling", True, 0), ("budget", True, 10 * USD)),
    ),
    Case(
        "plan ceiling: one micro-dollar above",
        10 * USD + 1,
        budgets=(budget(),),
        settings={"plan_ceiling": 10 * USD},
        outcome=Verdict.DENY,
        reason="PLAN_CEILING_EXCEEDED",
        stages=(("plan_ceiling", False, 0),),
    ),
    Case(
        "enterprise ceiling: equal passes",
        10 * USD,
        budgets=(budget(),),
        settings={"enterprise_ceiling": 10 * USD},
        draws=(("budget", "bp_a", 10 * USD),),
        stages=(("budget", True, 10 * USD), ("enterprise_ceiling", True, 0)),
    ),
    Case(
        "enterprise ceiling: one micro-dollar above",
        10 * USD + 1,
        budgets=(budget(),),
        settings={"enterprise_ceiling": 10 * USD},
        outcome=Verdict.DENY,
        reason="ENTERPRISE_CEILING_EXCEEDED",
        stages=(("budget", True, 10 * USD + 1), ("enterprise_ceiling", False, 0)),
    ),
    Case(
        "the budget fails before the enterprise ceiling is looked at",
        200 * USD,
        budgets=(budget(),),
        settings={"enterprise_ceiling": 10 * USD},
        outcome=Verdict.DENY,
        reason="BUDGET_EXCEEDED",
        stages=(
            ("budget", False, 100 * USD),
            ("reserved_credits", False, 0),
            ("emergency_credits", False, 0),
        ),
    ),
    Case(
        "the plan ceiling fails before any budget",
        200 * USD,
        budgets=(budget(),),
        settings={"plan_ceiling": 1 * USD, "enterprise_ceiling": 1 * USD},
        outcome=Verdict.DENY,
        reason="PLAN_CEILING_EXCEEDED",
        stages=(("plan_ceiling", False, 0),),
    ),
    Case(
        "approval threshold reached: the money is held",
        50 * USD,
        budgets=(budget(),),
        settings={"approval_threshold": 50 * USD},
        outcome=Verdict.REQUIRE_APPROVAL,
        reason="APPROVAL_REQUIRED",
        draws=(("budget", "bp_a", 50 * USD),),
        stages=(("budget", True, 50 * USD),),
    ),
    Case(
        "one micro-dollar under the threshold",
        50 * USD - 1,
        budgets=(budget(),),
        settings={"approval_threshold": 50 * USD},
        draws=(("budget", "bp_a", 50 * USD - 1),),
        stages=(("budget", True, 50 * USD - 1),),
    ),
    Case(
        "a deny rule",
        1,
        budgets=(budget(),),
        settings={"policy_outcome": RuleOutcome(then="deny", rule_id="r1")},
        outcome=Verdict.DENY,
        reason="POLICY_DENIED",
    ),
    Case(
        "a deny rule with its own reason",
        1,
        budgets=(budget(),),
        settings={"policy_outcome": RuleOutcome(then="deny", rule_id="r1", reason_code="FREEZE")},
        outcome=Verdict.DENY,
        reason="FREEZE",
    ),
    Case(
        "a require_approval rule",
        1,
        budgets=(budget(),),
        settings={"policy_outcome": RuleOutcome(then="require_approval", rule_id="big")},
        outcome=Verdict.REQUIRE_APPROVAL,
        reason="APPROVAL_REQUIRED",
        draws=(("budget", "bp_a", 1),),
        stages=(("budget", True, 1),),
    ),
    Case(
        "an allow rule overrides the threshold",
        80 * USD,
        budgets=(budget(),),
        settings={
            "approval_threshold": 1 * USD,
            "policy_outcome": RuleOutcome(then="allow", rule_id="trusted"),
        },
        draws=(("budget", "bp_a", 80 * USD),),
        stages=(("budget", True, 80 * USD),),
    ),
    Case(
        "credits only: budgets are skipped",
        5 * USD,
        budgets=(budget(),),
        grants=(grant("crd_r", 50 * USD),),
        settings={"policy_outcome": RuleOutcome(then="allow_with_credits_only", rule_id="c")},
        outcome=Verdict.ALLOW_WITH_CREDITS,
        reason="CREDITS_APPLIED",
        draws=(("credit", "crd_r", 5 * USD),),
        stages=(("reserved_credits", True, 5 * USD),),
    ),
    Case(
        "nested budgets each draw the same amount",
        30 * USD,
        budgets=(budget("bp_t", limit=1000 * USD), budget("bp_p", limit=40 * USD)),
        draws=(("budget", "bp_t", 30 * USD), ("budget", "bp_p", 30 * USD)),
        stages=(("budget", True, 30 * USD), ("budget", True, 30 * USD)),
    ),
    Case(
        "the tightest nested budget sets what budgets give",
        50 * USD,
        budgets=(budget("bp_t", limit=1000 * USD), budget("bp_p", limit=40 * USD)),
        grants=(grant("crd_r", 50 * USD),),
        outcome=Verdict.ALLOW_WITH_CREDITS,
        reason="CREDITS_APPLIED",
        draws=(
            ("budget", "bp_t", 40 * USD),
            ("budget", "bp_p", 40 * USD),
            ("credit", "crd_r", 10 * USD),
        ),
        stages=(
            ("budget", True, 40 * USD),
            ("budget", False, 40 * USD),
            ("reserved_credits", True, 10 * USD),
        ),
    ),
    Case(
        "an overdrawn budget has no capacity (not negative)",
        1,
        budgets=(budget(limit=10, spent=20),),
        grants=(grant("crd_r", 5),),
        outcome=Verdict.ALLOW_WITH_CREDITS,
        reason="CREDITS_APPLIED",
        draws=(("credit", "crd_r", 1),),
        stages=(("budget", False, 0), ("reserved_credits", True, 1)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reason_codes_in_hard_mode(case: Case):
    settings = EffectiveSettings(mode=Mode.HARD, **case.settings)
    out = decide(request(case.amount), settings, Snapshot(case.budgets, case.grants))
    assert (out.outcome, out.reason_code) == (case.outcome, case.reason)
    assert out.evaluated_outcome == case.outcome and out.enforced is True
    assert [(d.kind, d.ref, d.amount) for d in out.draws] == list(case.draws)
    assert [(s.stage, s.passed, s.drawn) for s in out.stages] == list(case.stages)
    assert out.requires_approval == (case.outcome == Verdict.REQUIRE_APPROVAL)
    assert out.message  # every outcome explains itself
    if case.outcome != Verdict.ALLOW:
        assert out.remediation
    assert sum(d.amount for d in out.draws if d.kind == "credit") <= case.amount


def test_every_reason_code_of_the_engine_is_in_the_table():
    reasons = {c.reason for c in CASES}
    assert {
        "WITHIN_BUDGET",
        "UNBUDGETED",
        "NO_BUDGET",
        "BUDGET_EXCEEDED",
        "CREDITS_APPLIED",
        "EMERGENCY_CREDITS_APPLIED",
        "PLAN_CEILING_EXCEEDED",
        "ENTERPRISE_CEILING_EXCEEDED",
        "APPROVAL_REQUIRED",
        "POLICY_DENIED",
    } <= reasons


# --- burn order --------------------------------------------------------------------------------


def _burned(grants, amount) -> list[str]:
    out = decide(
        request(amount),
        EffectiveSettings(mode=Mode.HARD, unbudgeted="allow"),
        Snapshot((budget(limit=0),), tuple(grants)),
    )
    assert out.outcome == Verdict.ALLOW_WITH_CREDITS, out.reason_code
    return [d.ref for d in out.draws if d.kind == "credit"]


def test_burn_order_reserved_pool_before_emergency_whatever_the_priority():
    grants = [grant("e", 10, pool="emergency", priority=0), grant("r", 10, priority=999)]
    assert _burned(grants, 15) == ["r", "e"]


def test_burn_order_priority_ascending():
    grants = [grant("p2", 10, priority=2), grant("p1", 10, priority=1)]
    assert _burned(grants, 15) == ["p1", "p2"]


def test_burn_order_soonest_expiry_first_and_no_expiry_last():
    grants = [grant("never", 10), grant("late", 10, expires=30), grant("soon", 10, expires=2)]
    assert _burned(grants, 25) == ["soon", "late", "never"]


def test_burn_order_then_oldest_then_ref():
    grants = [grant("b", 10, created=5), grant("c", 10, created=1), grant("a", 10, created=5)]
    assert _burned(grants, 25) == ["c", "a", "b"]


def test_empty_grants_are_skipped_and_a_grant_is_drawn_only_as_far_as_needed():
    out = decide(
        request(15),
        EffectiveSettings(mode=Mode.HARD),
        Snapshot((budget(limit=0),), (grant("empty", 0, priority=0), grant("big", 100))),
    )
    assert [(d.ref, d.amount) for d in out.draws] == [("big", 15)]


# --- modes -------------------------------------------------------------------------------------


def test_soft_mode_allows_a_breach_and_draws_the_amount_from_every_budget():
    budgets = (budget("bp_t", limit=1000 * USD), budget("bp_p", limit=10 * USD))
    out = decide(request(50 * USD), EffectiveSettings(mode=Mode.SOFT), Snapshot(budgets))
    assert (out.outcome, out.evaluated_outcome) == (Verdict.ALLOW, Verdict.DENY)
    assert out.breach is True and out.enforced is False and out.reason_code == "BUDGET_EXCEEDED"
    assert [(d.ref, d.amount) for d in out.draws] == [("bp_t", 50 * USD), ("bp_p", 50 * USD)]


def test_soft_mode_without_a_breach_draws_what_hard_would():
    snap = Snapshot((budget(limit=10),), (grant("crd", 10),))
    soft = decide(request(15), EffectiveSettings(mode=Mode.SOFT), snap)
    hard = decide(request(15), EffectiveSettings(mode=Mode.HARD), snap)
    assert soft.breach is False and soft.outcome == Verdict.ALLOW_WITH_CREDITS
    assert soft.draws == hard.draws


def test_shadow_mode_allows_and_draws_nothing_but_says_what_hard_would():
    out = decide(request(500 * USD), EffectiveSettings(mode=Mode.SHADOW), Snapshot((budget(),)))
    assert (out.outcome, out.evaluated_outcome, out.draws) == (Verdict.ALLOW, Verdict.DENY, ())
    assert out.breach is True and out.requires_approval is False


def test_an_approval_in_soft_mode_is_a_breach_not_a_hold():
    out = decide(
        request(50 * USD),
        EffectiveSettings(mode=Mode.SOFT, approval_threshold=1 * USD),
        Snapshot((budget(),)),
    )
    assert out.outcome == Verdict.ALLOW and out.evaluated_outcome == Verdict.REQUIRE_APPROVAL
    assert out.breach is True and out.requires_approval is False


# --- which grants the gate must lock -----------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "budgets", "credits_only", "reaches"),
    [
        (10, (budget(limit=10),), False, False),
        (11, (budget(limit=10),), False, True),
        (1, (), False, False),
        (1, (), True, True),
        (1, (budget(limit=10, spent=20),), False, True),
    ],
)
def test_waterfall_reaches_credits_exactly_when_the_waterfall_would(
    amount, budgets, credits_only, reaches
):
    assert (
        engine.waterfall_reaches_credits(
            amount=amount, budgets=budgets, credits_only_possible=credits_only
        )
        is reaches
    )
    if not credits_only:
        out = decide(
            request(amount),
            EffectiveSettings(mode=Mode.HARD),
            Snapshot(budgets, (grant("g", 10**9),)),
        )
        assert any(d.kind == "credit" for d in out.draws) is reaches


def test_only_hard_and_soft_draw_credits():
    assert [m for m in Mode if engine.mode_draws_credits(m)] == [Mode.SOFT, Mode.HARD]


# --- invalid input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "snapshot",
    [
        Snapshot((budget(reserved=-1),)),
        Snapshot((budget(limit=-1),)),
        Snapshot((), (grant("g", -1),)),
    ],
)
def test_negative_counters_are_refused(snapshot):
    with pytest.raises(ValueError):
        decide(request(1), EffectiveSettings(mode=Mode.HARD), snapshot)


def test_a_negative_amount_is_refused():
    with pytest.raises(ValueError):
        decide(request(-1), EffectiveSettings(mode=Mode.HARD), Snapshot())


# --- rounding at micro-dollar edges ------------------------------------------------------------


@pytest.mark.parametrize(
    ("monthly", "days", "left", "expected"),
    [
        (31 * USD, 31, 10, 10 * USD),  # exact
        (1, 31, 1, 1),  # a micro-dollar never prorates to zero
        (1, 31, 31, 1),
        (0, 30, 15, 0),
        (10 * USD, 30, 1, 333_334),  # 333_333.33... rounds up
        (10 * USD, 30, 30, 10 * USD),
        (10 * USD, 28, 0, 0),
        (999_999, 3, 2, 666_666),  # exact thirds
        (1_000_000, 3, 2, 666_667),  # 666_666.66... rounds up
    ],
)
def test_prorating_rounds_up_to_the_next_micro_dollar(monthly, days, left, expected):
    assert prorate_monthly(monthly, days_in_period=days, days_left=left) == expected


@pytest.mark.parametrize(
    ("days", "left"), [(0, 0), (30, 31), (30, -1)], ids=["no days", "too many", "negative"]
)
def test_prorating_refuses_impossible_periods(days, left):
    with pytest.raises(ValueError):
        prorate_monthly(1, days_in_period=days, days_left=left)


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "0.00"),
        (1, "0.000001"),
        (10, "0.00001"),
        (999_999, "0.999999"),
        (1_000_000, "1.00"),
        (1_500_000, "1.50"),
        (1_230_000, "1.23"),
        (1_234_000, "1.234"),
        (-1, "-0.000001"),
        (-1_500_000, "-1.50"),
    ],
)
def test_usd_text_at_micro_dollar_edges(micros, text):
    assert usd(micros) == text


def test_a_shortfall_of_one_micro_dollar_is_covered_by_one_micro_dollar_of_credit():
    out = decide(
        request(100 * USD + 1),
        EffectiveSettings(mode=Mode.HARD),
        Snapshot((budget(),), (grant("crd", 1),)),
    )
    assert out.outcome == Verdict.ALLOW_WITH_CREDITS
    assert [(d.kind, d.amount) for d in out.draws] == [("budget", 100 * USD), ("credit", 1)]
    assert "100.00 USD from budgets and 0.000001 USD from credits" in out.message
