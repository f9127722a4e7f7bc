"""What every parser produces: bill lines in micro-dollars with what can identify them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class BillFormatError(ValueError):
    """The file is not the format it claims (missing columns, not JSON, ...)."""

    def __init__(self, message: str, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


@dataclass(frozen=True)
class BillLine:
    line_numbers: tuple[int, ...]
    amount: Decimal  # USD, as billed (may be negative: credits, refunds)
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    reservation_ref: str = ""  # an explicit Tollgate reservation or decision id
    resource_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    llm: bool = False  # an LLM provider usage line (shared by project and time window)
    provider_project: str = ""  # LLM usage: the provider's project id
    description: str = ""
    invalid: str = ""  # why the line could not be read (kept and reported)
