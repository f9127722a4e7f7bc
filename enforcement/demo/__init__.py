"""Demo data for ``manage.py seed_demo``: the story every dashboard page and walk-through tells.

Budgets near and over their limits (with the alerts they fired), credit grants, a published policy with an approval
threshold and routing to a group that exists, a month of decision history (real gate calls,
commits and approvals through the services, then dated back), and pending approvals.
Idempotent: each part is created once.
"""

from __future__ import annotations

from controlplane.audit.services import checkpoint_create, ledger_verify_record
from enforcement.demo.history import seed_history
from enforcement.demo.setup import seed_budgets_and_credits, seed_policy
from enforcement.models import BudgetPeriod, Decision
from enforcement.services.alerts import budget_alerts_evaluate


def seed_enforcement_demo(*, tenant, stdout) -> None:
    seed_budgets_and_credits(tenant=tenant)
    seed_policy(tenant=tenant)
    if not Decision.objects.for_tenant(tenant).exists():
        seed_history(tenant=tenant)
        # The alerts the history crossed, now rather than at the worker's first sweep.
        budget_alerts_evaluate(
            period_ids=BudgetPeriod.objects.filter(tenant=tenant).values_list("pk", flat=True)
        )
        # The overview's ledger tile starts from a signed checkpoint and a clean verification.
        checkpoint_create()
        ledger_verify_record(trigger="demo", tenant_id=tenant.id)


__all__ = ["seed_enforcement_demo"]
