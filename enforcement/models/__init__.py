from enforcement.models.budgets import Budget, BudgetPeriod, CreditGrant, SpendRollup
from enforcement.models.decisions import Decision, Reservation, ReservationAllocation
from enforcement.models.policies import Policy

__all__ = [
    "Budget",
    "BudgetPeriod",
    "CreditGrant",
    "Decision",
    "Policy",
    "Reservation",
    "ReservationAllocation",
    "SpendRollup",
]
