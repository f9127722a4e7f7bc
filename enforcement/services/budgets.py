"""Budgets and credit grants: create, change limits, grant and void credits."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from billing import entitlements
from billing.catalog import CREDIT_GRANTS, FORECAST_ALERTS
from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.tenancy import plan_limits
from controlplane.tenancy.models import Project, Tenant
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Budget, BudgetPeriod, CreditGrant
from enforcement.periods import period_bounds
from enforcement.services.locking import lock_budget_periods, lock_grants


def check_alert_settings(tenant, alert_thresholds, forecast_alert) -> list[int] | None:
    """Checked alert settings; enabling forecast alerts needs the plan's entitlement."""
    if forecast_alert:
        entitlements.require(tenant, FORECAST_ALERTS)
    if alert_thresholds is None:
        return None
    values = list(alert_thresholds)
    if len(values) > 10 or any(
        isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1000 for v in values
    ):
        raise TollgateError(
            "VALIDATION_FAILED",
            "alert_thresholds takes up to 10 whole percentages between 1 and 1000.",
            errors=[{"field": "alert_thresholds", "message": "Invalid.", "code": "invalid"}],
        )
    return sorted(set(values))


def budget_create(
    *,
    tenant: Tenant,
    limit_micros: int,
    period: str = "monthly",
    project: Project | None = None,
    environment: str = "",
    name: str = "",
    alert_thresholds: list[int] | None = None,
    forecast_alert: bool = False,
    api_key=None,
) -> Budget:
    """One budget per scope (tenant | project | project+env) and period.

    An environment scope needs a project; a bound ``api_key`` creates budgets inside its binding
    only (never a tenant-wide one).
    """
    if environment and project is None:
        raise TollgateError(
            "VALIDATION_FAILED",
            "An environment-scoped budget needs a project.",
            errors=[
                {"field": "scope.environment", "message": "Needs scope.project.", "code": "invalid"}
            ],
        )
    if api_key is not None:
        _check_budget_binding(api_key, project, environment)
    thresholds = check_alert_settings(tenant, alert_thresholds, forecast_alert)
    try:
        with transaction.atomic():
            plan_limits.enforce(
                tenant=tenant,
                limit="budgets",
                count=lambda: Budget.objects.filter(tenant=tenant).count(),
            )
            budget = Budget.objects.create(
                tenant=tenant,
                project=project,
                environment=environment,
                period=period,
                limit_micros=limit_micros,
                name=name,
                alert_thresholds=thresholds,
                forecast_alert=forecast_alert,
            )
            ledger_append_control(
                tenant_id=tenant.id,
                kind="budget.created",
                payload={
                    "budget": budget.id,
                    "project": project.id if project else None,
                    "environment": environment,
                    "period": period,
                    "limit": limit_micros,
                },
            )
    except IntegrityError as exc:
        raise TollgateError(
            EnforcementErrorCode.BUDGET_SCOPE_TAKEN,
            "A budget with this scope and period already exists.",
            remediation="Change the existing budget's limit with PATCH instead.",
            status=409,
        ) from exc
    return budget


def _check_budget_binding(api_key, project, environment: str) -> None:
    if api_key.project_id is not None and (project is None or project.pk != api_key.project_id):
        raise TollgateError(
            EnforcementErrorCode.KEY_SCOPE_MISMATCH,
            f"This API key is bound to project {api_key.project.slug!r}: it creates budgets "
            "of that project only.",
            remediation="Set scope.project to the key's project, or use an unbound key.",
            status=403,
        )
    if api_key.environment and environment != api_key.environment:
        raise TollgateError(
            EnforcementErrorCode.KEY_SCOPE_MISMATCH,
            f"This API key is bound to environment {api_key.environment!r}: it creates budgets "
            "of that environment only.",
            remediation="Set scope.environment to the key's environment, or use an unbound key.",
            status=403,
        )


def budget_periods_open(*, tenant: Tenant, budgets, today) -> None:
    """Create the periods containing ``today`` of these budgets (a concurrent creator wins).

    The first decision of a period does this inside its own transaction, then locks the rows.
    """
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


_KEEP = object()


@transaction.atomic
def budget_update(
    *,
    budget: Budget,
    limit_micros: int | None = None,
    name: str | None = None,
    alert_thresholds=_KEEP,
    forecast_alert: bool | None = None,
) -> Budget:
    """Change the limit (the current period's limit follows; reserved/spent are untouched) and
    the alert settings. ``alert_thresholds=None`` goes back to the default thresholds."""
    budget = Budget.objects.select_for_update().get(pk=budget.pk)
    if name is not None:
        budget.name = name
    alerts_changed = {}
    if alert_thresholds is not _KEEP:
        budget.alert_thresholds = check_alert_settings(budget.tenant_id, alert_thresholds, False)
        alerts_changed["alert_thresholds"] = budget.alert_thresholds
    if forecast_alert is not None:
        check_alert_settings(budget.tenant_id, None, forecast_alert)
        budget.forecast_alert = forecast_alert
        alerts_changed["forecast_alert"] = forecast_alert
    if alerts_changed:
        ledger_append_control(
            tenant_id=budget.tenant_id,
            kind="budget.alerts_changed",
            payload={"budget": budget.id, **alerts_changed},
        )
    if limit_micros is not None and limit_micros != budget.limit_micros:
        previous = budget.limit_micros
        budget.limit_micros = limit_micros
        start, _ = period_bounds(budget.period, db_now().date())
        current = BudgetPeriod.objects.filter(budget=budget, period_start=start).values_list(
            "id", flat=True
        )
        for period in lock_budget_periods(current).values():
            BudgetPeriod.objects.filter(pk=period.pk).update(limit_micros=limit_micros)
        ledger_append_control(
            tenant_id=budget.tenant_id,
            kind="budget.limit_changed",
            payload={"budget": budget.id, "from": previous, "to": limit_micros},
        )
    budget.save()
    return budget


@transaction.atomic
def credit_grant_create(
    *,
    tenant: Tenant,
    amount_micros: int,
    pool: str = "reserved",
    priority: int = 100,
    effective_at: datetime | None = None,
    expires_at: datetime | None = None,
    note: str = "",
) -> CreditGrant:
    entitlements.require(tenant, CREDIT_GRANTS)
    now = db_now()
    effective = effective_at or now
    if expires_at is not None and expires_at <= effective:
        raise TollgateError(
            "VALIDATION_FAILED",
            "expires_at must be after effective_at.",
            errors=[
                {"field": "expires_at", "message": "Must be after effective_at.", "code": "invalid"}
            ],
        )
    grant = CreditGrant.objects.create(
        tenant=tenant,
        pool=pool,
        amount_micros=amount_micros,
        remaining_micros=amount_micros,
        priority=priority,
        effective_at=effective,
        expires_at=expires_at,
        note=note,
    )
    ledger_append_control(
        tenant_id=tenant.id,
        kind="credit_grant.created",
        payload={
            "grant": grant.id,
            "pool": pool,
            "amount": amount_micros,
            "priority": priority,
            "effective_at": effective.isoformat(),
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return grant


@transaction.atomic
def credit_grant_void(*, grant: CreditGrant) -> CreditGrant:
    """Stop future draws; money already held by reservations stays with them."""
    locked = lock_grants([grant.pk])[grant.pk]
    if locked.voided_at is not None:
        raise TollgateError(
            EnforcementErrorCode.GRANT_VOIDED,
            f"Credit grant {locked.id} is already void.",
            status=409,
        )
    locked.voided_at = db_now()
    locked.save(update_fields=["voided_at", "updated_at"])
    ledger_append_control(
        tenant_id=locked.tenant_id,
        kind="credit_grant.voided",
        payload={"grant": locked.id, "remaining": locked.remaining_micros},
    )
    return locked


__all__ = ["budget_create", "budget_update", "credit_grant_create", "credit_grant_void"]
