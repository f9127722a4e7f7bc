"""Decision context from per-day spend rollups: month-to-date, burn rate, forecast, risk. Pure.

risk_score = forecast_eom / budget_limit (4 decimals; 0.0 when no budget applies).
risk_class: low < 0.8 <= medium < 1.0 <= high < 1.2 <= critical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from enforcement.engine import usd

RISK_BANDS = ((0.8, "low"), (1.0, "medium"), (1.2, "high"))


@dataclass(frozen=True, slots=True)
class DecisionContext:
    mtd_spend: int
    burn_rate_daily: int
    forecast_eom: int
    risk_score: float
    risk_class: str

    def to_dict(self) -> dict:
        return {
            "mtd_spend_usd": usd(self.mtd_spend),
            "burn_rate_daily_usd": usd(self.burn_rate_daily),
            "forecast_eom_usd": usd(self.forecast_eom),
            "risk_class": self.risk_class,
            "risk_score": self.risk_score,
        }


def risk_class_of(score: float) -> str:
    for bound, name in RISK_BANDS:
        if score < bound:
            return name
    return "critical"


def compute_context(
    *,
    daily_spend: Mapping[date, int],
    period_start: date,
    period_end: date,
    today: date,
    budget_limit: int | None,
    pending: int = 0,
) -> DecisionContext:
    """Figures for the period [period_start, period_end) as of ``today`` (inclusive)."""
    if not period_start <= today < period_end:
        raise ValueError("today must lie inside the period")
    mtd = sum(amount for day, amount in sorted(daily_spend.items()) if period_start <= day <= today)
    elapsed = (today - period_start).days + 1
    burn = -((-max(mtd, 0)) // elapsed)
    remaining_days = (period_end - today).days - 1
    forecast = mtd + pending + burn * remaining_days
    score = round(forecast / budget_limit, 4) if budget_limit else 0.0
    return DecisionContext(
        mtd_spend=mtd,
        burn_rate_daily=burn,
        forecast_eom=forecast,
        risk_score=score,
        risk_class=risk_class_of(score),
    )
