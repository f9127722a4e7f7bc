"""The curated catalog: every entitlement we market and every plan we sell. Pure data.

There is no "all features" flag: a plan lists each entitlement it includes, and an entitlement
enters this catalog only together with the runtime check that enforces it (the catalog-walking
test, ``tests/billing/test_entitlement_catalog.py``, fails for an entitlement without one).
The database holds a copy of the plans (``billing.Plan``) so tenants can reference them; the
migration ``0003_i15_seed_plans`` and ``manage.py sync_plans`` write it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Maturity(StrEnum):
    GA = "GA"
    BETA = "Beta"
    PREVIEW = "Preview"


@dataclass(frozen=True)
class Entitlement:
    key: str
    name: str
    maturity: Maturity
    description: str


# Keys other apps check. Each is enforced where its feature lives (API, admin, services).
BYOK = "byok"
CREDIT_GRANTS = "credit_grants"
INVOICE_RECONCILIATION = "invoice_reconciliation"
FORECAST_ALERTS = "forecast_alerts"
LLM_GATEWAY = "llm_gateway"

ENTITLEMENTS: dict[str, Entitlement] = {
    e.key: e
    for e in (
        Entitlement(
            BYOK,
            "Bring your own provider keys",
            Maturity.GA,
            "Store your own LLM provider credentials (encrypted, liveness-probed) and route "
            "LLM calls through them.",
        ),
        Entitlement(
            CREDIT_GRANTS,
            "Credit grants",
            Maturity.GA,
            "Reserved and emergency credit pools that the gate draws on when budgets run out.",
        ),
        Entitlement(
            INVOICE_RECONCILIATION,
            "Invoice reconciliation",
            Maturity.BETA,
            "Match cloud bills (FOCUS CSV) and LLM provider usage to committed reservations.",
        ),
        Entitlement(
            LLM_GATEWAY,
            "LLM spend gateway",
            Maturity.BETA,
            "An OpenAI- and Anthropic-compatible proxy and LLM reservations: every call is "
            "priced from the model catalog, reserved before it is sent and committed from its "
            "usage.",
        ),
        Entitlement(
            FORECAST_ALERTS,
            "Forecast alerts",
            Maturity.PREVIEW,
            "Alerts when a budget's end-of-month forecast crosses its limit.",
        ),
    )
}

# Limits a plan sets. ``None`` means unlimited.
LIMIT_KEYS = (
    "projects",
    "budgets",
    "api_keys",
    "decisions_per_month",
    "byok_providers",
    "approvers",
)


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    rank: int  # upgrade order: a higher rank includes everything a lower one has
    entitlements: tuple[str, ...]
    limits: dict[str, int | None] = field(default_factory=dict)


_GROWTH = (CREDIT_GRANTS, INVOICE_RECONCILIATION)
_PRO = (*_GROWTH, BYOK, LLM_GATEWAY)
_ENTERPRISE = (*_PRO, FORECAST_ALERTS)

PLANS: dict[str, PlanSpec] = {
    p.code: p
    for p in (
        PlanSpec(
            "free",
            "Free",
            0,
            (),
            {
                "projects": 1,
                "budgets": 3,
                "api_keys": 2,
                "decisions_per_month": 1_000,
                "byok_providers": 0,
                "approvers": 1,
            },
        ),
        PlanSpec(
            "starter",
            "Starter",
            1,
            (),
            {
                "projects": 3,
                "budgets": 10,
                "api_keys": 10,
                "decisions_per_month": 25_000,
                "byok_providers": 0,
                "approvers": 3,
            },
        ),
        PlanSpec(
            "growth",
            "Growth",
            2,
            _GROWTH,
            {
                "projects": 25,
                "budgets": 100,
                "api_keys": 50,
                "decisions_per_month": 500_000,
                "byok_providers": 0,
                "approvers": 10,
            },
        ),
        PlanSpec(
            "pro",
            "Pro",
            3,
            _PRO,
            {
                "projects": 100,
                "budgets": 500,
                "api_keys": 250,
                "decisions_per_month": 5_000_000,
                "byok_providers": 2,
                "approvers": 50,
            },
        ),
        PlanSpec(
            "enterprise",
            "Enterprise",
            4,
            _ENTERPRISE,
            dict.fromkeys(LIMIT_KEYS),
        ),
    )
}

# New tenants start here unless settings.BILLING_DEFAULT_PLAN says otherwise.
DEFAULT_PLAN = "free"


def cheapest_plan_with(entitlement: str) -> PlanSpec | None:
    """The lowest-ranked plan that includes ``entitlement`` (what a 403 tells you to buy)."""
    having = [p for p in PLANS.values() if entitlement in p.entitlements]
    return min(having, key=lambda p: p.rank) if having else None


def cheapest_plan_allowing(limit: str, count: int) -> PlanSpec | None:
    """The lowest-ranked plan whose ``limit`` allows ``count`` (what a 402 tells you to buy)."""
    allowing = [
        p for p in PLANS.values() if p.limits.get(limit) is None or p.limits[limit] >= count
    ]
    return min(allowing, key=lambda p: p.rank) if allowing else None


def _check() -> None:
    for plan in PLANS.values():
        unknown = set(plan.entitlements) - set(ENTITLEMENTS)
        if unknown:
            raise ValueError(f"plan {plan.code} lists unknown entitlements {sorted(unknown)}")
        if set(plan.limits) != set(LIMIT_KEYS):
            raise ValueError(f"plan {plan.code} must set exactly the limits {LIMIT_KEYS}")


_check()
