"""Tollgate's Python client: ask before spending, hold the money, commit what was spent."""

from tollgate.client import Spend, Tollgate
from tollgate.errors import (
    ApiError,
    ApprovalDenied,
    ApprovalPending,
    ApprovalRequired,
    BudgetDenied,
    TollgateError,
    Unavailable,
)
from tollgate.models import Decision, Reservation

__all__ = [
    "ApiError",
    "ApprovalDenied",
    "ApprovalPending",
    "ApprovalRequired",
    "BudgetDenied",
    "Decision",
    "Reservation",
    "Spend",
    "Tollgate",
    "TollgateError",
    "Unavailable",
]
__version__ = "0.1.0"
