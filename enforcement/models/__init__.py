from enforcement.models.actions import Action
from enforcement.models.alerts import BudgetAlert
from enforcement.models.approvals import ApprovalRequest, ApprovalToken, ApprovalVote, SigningKey
from enforcement.models.budgets import Budget, BudgetPeriod, CreditGrant, SpendRollup
from enforcement.models.decisions import Decision, Reservation, ReservationAllocation
from enforcement.models.integrations import RunTaskIntegration, RunTaskResult
from enforcement.models.llm import LlmCall
from enforcement.models.policies import Policy
from enforcement.models.reconciliation import ReconciliationImport, ReconciliationLine
from enforcement.models.simulations import SimulationJob

__all__ = [
    "Action",
    "ApprovalRequest",
    "ApprovalToken",
    "ApprovalVote",
    "Budget",
    "BudgetAlert",
    "BudgetPeriod",
    "CreditGrant",
    "Decision",
    "LlmCall",
    "Policy",
    "ReconciliationImport",
    "ReconciliationLine",
    "Reservation",
    "ReservationAllocation",
    "RunTaskIntegration",
    "RunTaskResult",
    "SigningKey",
    "SimulationJob",
    "SpendRollup",
]
