"""Budgets as operators read them: current period, utilisation, burn rate, forecast.

Three queries whatever the number of budgets: the budgets, their current periods, and the
month's spend rollups of the tenant (scoped per budget in Python).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, Sum

from enforcement.context import compute_context
from enforcement.models import Budget, BudgetPeriod, SpendRollup
from enforcement.periods import period_bounds

# Utilisation bands for colour: below 80 % fine, up to 100 % near the limit, then over.
WARN_AT = 0.8
OVER_AT = 1.0


@dataclass(frozen=True)
class BudgetLine:
    budget: Budget
    period_start: date
    period_end: date  # exclusive
    limit: int
    reserved: int
    spent: int
    burn_rate_daily: int
    forecast: int
    risk_class: str

    @property
    def available(self) -> int:
        return self.limit - self.reserved - self.spent

    @property
    def utilisation(self) -> float:
        """(spent + reserved) / limit; 1.0 and above is at or over the limit."""
        used = self.spent + self.reserved
        return used / self.limit if self.limit else (1.0 if used else 0.0)

    @property
    def level(self) -> str:
        """``ok`` | ``near`` | ``over``: the threshold colour of the utilisation bar."""
        if self.utilisation >= OVER_AT:
            return "over"
        return "near" if self.utilisation >= WARN_AT else "ok"


def _in_scope(budget: Budget, project_id: str, environment: str) -> bool:
    if budget.project_id is None:
        return True
    if budget.project_id != project_id:
        return False
    return not budget.environment or budget.environment == environment


def budgets_sort(budgets: list[Budget]) -> list[Budget]:
    """Widest scope first (tenant, project, project + environment), then by id: the order of a
    decision's budget stages."""
    return sorted(budgets, key=lambda b: (b.project_id is not None, bool(b.environment), b.id))


def budgets_covering(*, tenant, project, environment: str) -> list[Budget]:
    """The budgets whose scope contains (project, environment), widest first."""
    scope = (
        Q(project__isnull=True)
        | Q(project=project, environment="")
        | Q(project=project, environment=environment)
    )
    return budgets_sort(list(Budget.objects.for_tenant(tenant).filter(scope)))


def budget_current_periods(budgets, *, today: date) -> dict[str, BudgetPeriod]:
    """budget id -> its period containing ``today`` (absent until a decision opens it); one
    query whatever the number of budgets."""
    keys = {(b.id, period_bounds(b.period, today)[0]) for b in budgets}
    if not keys:
        return {}
    condition = Q()
    for budget_id, start in keys:
        condition |= Q(budget_id=budget_id, period_start=start)
    return {p.budget_id: p for p in BudgetPeriod.objects.filter(condition)}


def budget_lines(*, tenant, today: date) -> list[BudgetLine]:
    """Every budget of the tenant with its current period (a period not yet opened reads 0)."""
    budgets = list(Budget.objects.for_tenant(tenant).select_related("project").order_by("id"))
    if not budgets:
        return []
    month_start, month_end = period_bounds("monthly", today)
    periods = budget_current_periods(budgets, today=today)
    rollups = list(
        SpendRollup.objects.filter(
            tenant=tenant, day__gte=month_start, day__lt=month_end
        ).values_list("project_id", "environment", "day", "spent_micros")
    )
    lines = []
    for budget in budgets:
        start, end = period_bounds(budget.period, today)
        period = periods.get(budget.id)
        limit = period.limit_micros if period else budget.limit_micros
        reserved = period.reserved_micros if period else 0
        spent = period.spent_micros if period else 0
        per_day: dict[date, int] = defaultdict(int)
        for project_id, environment, day, amount in rollups:
            if start <= day < end and _in_scope(budget, project_id, environment):
                per_day[day] += amount
        ctx = compute_context(
            daily_spend=per_day,
            period_start=start,
            period_end=end,
            today=today,
            budget_limit=limit,
            pending=reserved,
        )
        lines.append(
            BudgetLine(
                budget=budget,
                period_start=start,
                period_end=end,
                limit=limit,
                reserved=reserved,
                spent=spent,
                burn_rate_daily=ctx.burn_rate_daily,
                forecast=ctx.forecast_eom,
                risk_class=ctx.risk_class,
            )
        )
    return lines


def daily_spend(*, tenant, start: date, end: date) -> dict[date, int]:
    """Committed spend per day in [start, end) across the tenant (from the rollups)."""
    rows = (
        SpendRollup.objects.filter(tenant=tenant, day__gte=start, day__lt=end)
        .values("day")
        .annotate(total=Sum("spent_micros"))
        .values_list("day", "total")
    )
    return {day: int(total) for day, total in rows}


def budget_labels(*, tenant) -> dict[str, str]:
    """Budget id -> "Payments prod (payments/prod)", for explaining waterfalls (one query)."""
    return {
        budget.id: f"{budget.name} ({budget.scope_label})" if budget.name else budget.scope_label
        for budget in Budget.objects.for_tenant(tenant).select_related("project")
    }
