"""Demo data for ``manage.py seed_demo``: budgets and a credit grant for the demo tenant."""

from __future__ import annotations

from controlplane.core.money import parse_usd
from enforcement.models import Budget, CreditGrant
from enforcement.services.budgets import budget_create, credit_grant_create


def seed_enforcement_demo(*, tenant, stdout) -> None:
    """Idempotent: creates each budget only if its scope has none yet."""
    payments = tenant.projects.get(slug="payments")
    wanted = [
        (None, "", "10000.00", "Tenant-wide monthly"),
        (payments, "", "2000.00", "Payments monthly"),
        (payments, "prod", "1000.00", "Payments prod monthly"),
    ]
    for project, environment, limit, name in wanted:
        exists = Budget.objects.filter(
            tenant=tenant, project=project, environment=environment, period="monthly"
        ).exists()
        if not exists:
            budget_create(
                tenant=tenant,
                limit_micros=parse_usd(limit),
                project=project,
                environment=environment,
                name=name,
            )
    if not CreditGrant.objects.filter(tenant=tenant).exists():
        credit_grant_create(tenant=tenant, amount_micros=parse_usd("250.00"), note="Demo credits")
