"""Reads used by the API, admin and dashboard (one module per idea)."""

from enforcement.selectors.alerts import budget_alert_badges, budget_alerts
from enforcement.selectors.approvals import approvals_for_approver, with_approval_details
from enforcement.selectors.budgets import BudgetLine, budget_labels, budget_lines, daily_spend
from enforcement.selectors.credits import (
    credit_grants,
    reconciliation_exceptions,
    reconciliation_imports,
)
from enforcement.selectors.decisions import DecisionFilters, decision_for_page, decisions_page

__all__ = [
    "BudgetLine",
    "DecisionFilters",
    "approvals_for_approver",
    "budget_alert_badges",
    "budget_alerts",
    "budget_labels",
    "budget_lines",
    "credit_grants",
    "daily_spend",
    "decision_for_page",
    "decisions_page",
    "reconciliation_exceptions",
    "reconciliation_imports",
    "with_approval_details",
]
