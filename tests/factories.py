"""Test data builders that go through the real services."""

from __future__ import annotations

from controlplane.tenancy import services
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.scopes import all_scopes


def make_tenant(slug: str = "acme", name: str | None = None, *, plan: str = "growth") -> Tenant:
    """A tenant on ``plan`` (Growth: credit grants and reconciliation, room for test data)."""
    from billing.services.plans import tenant_plan_set

    tenant = services.tenant_create(slug=slug, name=name or slug.title())
    tenant_plan_set(tenant=tenant, plan=plan)
    return tenant


def make_project(tenant: Tenant, slug: str = "payments"):
    return services.project_create(tenant=tenant, slug=slug, name=slug.title())


def make_api_key(tenant: Tenant, *, scopes=None, **kwargs):
    """(ApiKey, plaintext); all registered scopes unless given."""
    return services.api_key_issue(
        tenant=tenant,
        name=kwargs.pop("name", "test key"),
        scopes=list(all_scopes()) if scopes is None else scopes,
        **kwargs,
    )


def make_user(username: str = "alice", **kwargs):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=username, password="pw-123456!", **kwargs)


def make_budget(tenant, limit_usd: str, *, project=None, environment: str = "", period="monthly"):
    from controlplane.core.money import parse_usd
    from enforcement.services.budgets import budget_create

    return budget_create(
        tenant=tenant,
        limit_micros=parse_usd(limit_usd),
        period=period,
        project=project,
        environment=environment,
    )


def make_budget_alert(budget, *, kind="threshold", percent=100, forecast_usd=None):
    """An alert fired on the budget's current period (opened when it is not yet), recorded as
    the alert service records one."""
    from controlplane.core.clock import db_now
    from controlplane.core.money import parse_usd
    from enforcement.models import BudgetAlert, BudgetPeriod
    from enforcement.periods import period_bounds

    start, end = period_bounds(budget.period, db_now().date())
    period, _ = BudgetPeriod.objects.get_or_create(
        budget=budget,
        period_start=start,
        defaults={
            "tenant_id": budget.tenant_id,
            "period_end": end,
            "limit_micros": budget.limit_micros,
        },
    )
    return BudgetAlert.objects.create(
        tenant_id=budget.tenant_id,
        budget=budget,
        budget_period=period,
        kind=kind,
        threshold_percent=percent,
        spent_micros=period.spent_micros,
        limit_micros=period.limit_micros,
        forecast_micros=parse_usd(forecast_usd) if forecast_usd else None,
        fired_at=db_now(),
    )


def make_grant(tenant, amount_usd: str, *, pool="reserved", priority=100, expires_at=None):
    from controlplane.core.money import parse_usd
    from enforcement.services.budgets import credit_grant_create

    return credit_grant_create(
        tenant=tenant,
        amount_micros=parse_usd(amount_usd),
        pool=pool,
        priority=priority,
        expires_at=expires_at,
    )


def require_approval_above(tenant, usd: str) -> None:
    """Make the gate answer REQUIRE_APPROVAL (hard mode) for amounts >= ``usd``.

    The one place approval tests switch approvals on: publishes a policy with that threshold.
    """
    from controlplane.core.money import parse_usd
    from tests.enforcement.helpers import set_gate_settings

    set_gate_settings(tenant, approval_threshold_micros=parse_usd(usd))


def make_member(tenant, username: str, role: str = "member", *, email: str = ""):
    """A user with a membership in ``tenant``."""
    from controlplane.tenancy.services import membership_set

    user = make_user(username, email=email or f"{username}@example.com")
    membership_set(tenant=tenant, user=user, role=role)
    return user


def user_client(tenant, user, scopes=("approvals:read", "approvals:write")):
    """An APIClient authenticated with an API key bound to ``user``."""
    from rest_framework.test import APIClient

    _, plaintext = make_api_key(tenant, scopes=list(scopes), user=user, name=f"{user} key")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client
