"""Test data builders that go through the real services."""

from __future__ import annotations

from controlplane.tenancy import services
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.scopes import all_scopes


def make_tenant(slug: str = "acme", name: str | None = None) -> Tenant:
    return services.tenant_create(slug=slug, name=name or slug.title())


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
