from enforcement.models.budgets import Budget, BudgetPeriod, CreditGrant, SpendRollup
from enforcement.models.decisions import Decision, Reservation, ReservationAllocation
from enforcement.models.settings import TenantGateSettings

__all__ = [
    "Budget",
    "BudgetPeriod",
    "CreditGrant",
    "Decision",
    "Reservation",
    "ReservationAllocation",
    "SpendRollup",
    "TenantGateSettings",
]
