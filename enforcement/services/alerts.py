"""Budget alerts: threshold alerts (default 50/80/90/100 % of the limit) and forecast alerts,
each fired once per budget period as an outbox webhook and shown as a dashboard badge.

Measured on spend (committed, late and invoiced money: ``BudgetPeriod.spent``), not on holds.
Spend only rises within a period (a refund aside), so a check of the level finds every crossing
whenever it runs: nothing is lost if a check is late or a worker dies.

Where the checks run, and why not in the gate's transaction:
- the gate only moves ``reserved``, so decisions never cross a threshold: zero work there;
- ``reservation_commit`` / reconciliation know each period's spend before and after in memory;
  when a threshold lies in between they enqueue ``budget_alerts_evaluate_task`` after commit
  (alerts within seconds, no query added to the commit);
- the beat sweep (``BUDGET_ALERT_SWEEP_SECONDS``) re-checks every current period: the backstop
  for an enqueue lost with its process, and the only place forecasts are computed (a forecast
  moves with the calendar, not only with spend).
UNIQUE(period, kind, threshold) makes concurrent checks fire each alert once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction

from billing import entitlements
from billing.catalog import FORECAST_ALERTS
from controlplane.audit.outbox import outbox_enqueue
from controlplane.core.clock import db_now
from controlplane.core.money import format_usd
from enforcement.context import compute_context
from enforcement.models import Budget, BudgetAlert, BudgetPeriod

log = structlog.get_logger(__name__)
Kind = BudgetAlert.Kind


def thresholds_of(budget: Budget) -> list[int]:
    """The budget's own thresholds, else the deployment default."""
    values = budget.alert_thresholds or settings.BUDGET_ALERT_DEFAULT_THRESHOLDS
    return sorted({int(v) for v in values})


def crossed(limit: int, before: int, after: int, thresholds: Iterable[int]) -> list[int]:
    """Thresholds (percent of ``limit``) reached by going from ``before`` to ``after``. Pure."""
    if limit <= 0:
        return []
    return [p for p in thresholds if before * 100 < limit * p <= after * 100]


def _reached(period: BudgetPeriod, thresholds: list[int]) -> list[int]:
    if period.limit_micros <= 0:
        return []
    return [p for p in thresholds if period.spent_micros * 100 >= period.limit_micros * p]


def _forecast(period: BudgetPeriod, today) -> int:
    day = min(max(today, period.period_start), period.period_end - timedelta(days=1))
    return compute_context(
        daily_spend={period.period_start: period.spent_micros},
        period_start=period.period_start,
        period_end=period.period_end,
        today=day,
        budget_limit=period.limit_micros,
        pending=period.reserved_micros,
    ).forecast_eom


def _fire(period: BudgetPeriod, kind: str, percent: int, now, forecast: int | None) -> bool:
    """Record one alert and its webhook together; False when it had already fired."""
    budget = period.budget
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(
                tenant_id=period.tenant_id,
                budget_id=period.budget_id,
                budget_period=period,
                kind=kind,
                threshold_percent=percent,
                spent_micros=period.spent_micros,
                limit_micros=period.limit_micros,
                forecast_micros=forecast,
                fired_at=now,
            )
            outbox_enqueue(
                tenant_id=period.tenant_id,
                event_type="budget.threshold_crossed"
                if kind == Kind.THRESHOLD
                else "budget.forecast_exceeds_limit",
                payload={
                    "alert_id": alert.id,
                    "budget_id": budget.id,
                    "budget_name": budget.name,
                    "period_start": period.period_start.isoformat(),
                    "period_end": period.period_end.isoformat(),
                    "threshold_percent": percent,
                    "spent_usd": format_usd(period.spent_micros),
                    "limit_usd": format_usd(period.limit_micros),
                    "forecast_usd": None if forecast is None else format_usd(forecast),
                },
            )
    except IntegrityError:
        return False  # another check fired it first
    log.info(
        "budget_alert", budget=budget.id, period=period.id, kind=kind, threshold_percent=percent
    )
    return True


def budget_alerts_evaluate(*, period_ids: Iterable[str] | None = None) -> int:
    """Fire every alert due for these periods (None: every current or just-ended period).

    Idempotent and safe to run concurrently; returns how many alerts fired.
    """
    now = db_now()
    today = now.date()
    periods = BudgetPeriod.objects.select_related("budget")
    if period_ids is None:
        # Just-ended periods too: a crossing in the last minutes of a month is still caught.
        periods = periods.filter(period_end__gt=today - timedelta(days=1), period_start__lte=today)
    else:
        periods = periods.filter(pk__in=list(period_ids))
    periods = list(periods.filter(spent_micros__gt=0) | periods.filter(budget__forecast_alert=True))
    fired_before = set(
        BudgetAlert.objects.filter(budget_period__in=periods).values_list(
            "budget_period_id", "kind", "threshold_percent"
        )
    )
    forecast_tenants: dict[str, bool] = {}
    fired = 0
    for period in periods:
        for percent in _reached(period, thresholds_of(period.budget)):
            if (period.id, Kind.THRESHOLD, percent) not in fired_before:
                fired += _fire(period, Kind.THRESHOLD, percent, now, None)
        if not period.budget.forecast_alert or period.budget.period != Budget.Period.MONTHLY:
            continue
        if (period.id, Kind.FORECAST, 100) in fired_before or today >= period.period_end:
            continue
        tenant_id = period.tenant_id
        if tenant_id not in forecast_tenants:
            # A downgraded tenant keeps the setting but gets no forecast alerts.
            forecast_tenants[tenant_id] = entitlements.enabled(tenant_id, FORECAST_ALERTS)
        if not forecast_tenants[tenant_id]:
            continue
        forecast = _forecast(period, today)
        if forecast > period.limit_micros:
            fired += _fire(period, Kind.FORECAST, 100, now, forecast)
    return fired


def alert_hint_after_commit(periods_before: dict, charges: dict[str, int]) -> None:
    """Called inside a spend-changing transaction with each period as locked (before the
    change) and what it was charged: if a threshold lies in between, have the periods checked
    right after commit (the sweep would find them too, later). One small read of the budgets'
    thresholds, only when something was charged."""
    charged = {pid: c for pid, c in charges.items() if c > 0 and pid in periods_before}
    if not charged:
        return
    own = dict(
        Budget.objects.filter(
            pk__in={periods_before[pid].budget_id for pid in charged}
        ).values_list("id", "alert_thresholds")
    )
    due = []
    for period_id, charge in charged.items():
        period = periods_before[period_id]
        thresholds = sorted(
            {
                int(v)
                for v in (own.get(period.budget_id) or settings.BUDGET_ALERT_DEFAULT_THRESHOLDS)
            }
        )
        if crossed(
            period.limit_micros, period.spent_micros, period.spent_micros + charge, thresholds
        ):
            due.append(period_id)
    if due:
        from enforcement.tasks import budget_alerts_evaluate_task

        transaction.on_commit(lambda: _enqueue_quietly(budget_alerts_evaluate_task, due))


def _enqueue_quietly(task, period_ids: list[str]) -> None:
    """A lost hint only delays the alert to the next sweep; it must not fail the commit."""
    try:
        task.delay(period_ids)
    except Exception as exc:  # the broker is down: the sweep will catch the crossing
        log.warning("budget_alert_hint_not_enqueued", error=type(exc).__name__, periods=period_ids)
