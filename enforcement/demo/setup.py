"""Demo budgets, credit grants and the published demo policy."""

from __future__ import annotations

from datetime import timedelta

from controlplane.core.clock import db_now
from controlplane.core.money import parse_usd
from enforcement.models import Budget, CreditGrant, Policy
from enforcement.services.budgets import budget_create, credit_grant_create
from enforcement.services.policies import policy_create_draft, policy_publish

# (project slug or None, environment, period, limit USD, name)
BUDGETS = [
    (None, "", "monthly", "60000.00", "Company, monthly"),
    ("payments", "", "monthly", "35000.00", "Payments"),
    ("payments", "prod", "monthly", "25000.00", "Payments prod"),
    ("platform", "", "monthly", "4000.00", "Platform"),
    ("ml", "", "monthly", "2000.00", "Machine learning"),
]
# Budgets that also alert when their end-of-month forecast crosses the limit (the demo tenant
# is on Enterprise, which includes forecast alerts).
FORECAST_ALERTED = {"Platform", "Machine learning"}

DEMO_POLICY = """\
version: 1
description: Demo - approvals from 1,000 USD; big prod changes need two FinOps approvers
environments:
  prod: [prod, production]
ceilings: {plan_usd: "25000", enterprise_usd: null}
approval:
  threshold_usd: "1000"
  approvers: {roles: [owner, admin], groups: [finops], quorum: 1}
  ttl_seconds: 86400
rules:
  - id: no-gpu-in-dev
    when: >-
      request.env_class == 'nonprod' && 'gpu' in request.resource.attributes
      && request.resource.attributes.gpu > 0
    then: deny
    reason_code: GPU_NOT_IN_DEV
    message: GPUs are not allowed outside production.
    remediation: Use the shared GPU pool or ask platform-team.
  - id: big-prod-change
    when: request.env_class == 'prod' && request.amount_usd > 5000.0
    then: require_approval
    reason_code: BIG_PROD_CHANGE
    message: Production changes above 5,000 USD need two FinOps approvers.
    approvers: {groups: [finops], quorum: 2, separate_from_requester: true}
"""


def seed_budgets_and_credits(*, tenant) -> None:
    projects = {p.slug: p for p in tenant.projects.all()}
    for slug, environment, period, limit, name in BUDGETS:
        project = projects[slug] if slug else None
        exists = Budget.objects.filter(
            tenant=tenant, project=project, environment=environment, period=period
        ).exists()
        if not exists:
            budget_create(
                tenant=tenant,
                limit_micros=parse_usd(limit),
                project=project,
                environment=environment,
                period=period,
                name=name,
                forecast_alert=name in FORECAST_ALERTED,
            )
    if not CreditGrant.objects.filter(tenant=tenant).exists():
        credit_grant_create(tenant=tenant, amount_micros=parse_usd("250.00"), note="Demo credits")
        credit_grant_create(
            tenant=tenant,
            amount_micros=parse_usd("500.00"),
            pool=CreditGrant.Pool.EMERGENCY,
            expires_at=db_now() + timedelta(days=90),
            note="Incident buffer",
        )


def seed_policy(*, tenant) -> None:
    """Publish the demo policy once (version 2, after the built-in default)."""
    if Policy.objects.filter(tenant=tenant, created_by="demo").exists():
        return
    draft = policy_create_draft(tenant=tenant, text=DEMO_POLICY, created_by="demo")
    policy_publish(tenant=tenant, version=draft.version, published_by="demo", notify=False)
