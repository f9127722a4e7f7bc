"""An ``infracost breakdown --format json`` document -> the monthly/hourly delta of a plan."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from controlplane.core.money import MAX_MICROS, usd_to_micros_round_up

MAX_RESOURCE_TYPES = 50


class InfracostError(ValueError):
    """The document is not Infracost JSON; ``field`` is the JSON path of the first problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PlanCost:
    monthly_micros: int  # what the plan adds per month (0 when it lowers the cost)
    hourly_micros: int
    diff_monthly_micros: int  # signed: a plan that removes resources is negative
    total_monthly_micros: int
    resource_types: dict[str, int]  # resources per type, in the plan after apply
    resources: int
    projects: list[str]
    currency: str


def _amount(value: Any, field: str, *, signed: bool = True) -> int:
    """An Infracost cost string ("73.0", "-12.5", null) -> micro-dollars rounded up."""
    if value is None:
        return 0
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InfracostError(field, "Expected a decimal string.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise InfracostError(field, f"Not a decimal amount: {str(value)[:40]!r}.") from exc
    if not amount.is_finite() or abs(amount) * 1_000_000 > MAX_MICROS:
        raise InfracostError(field, "Out of range.")
    if amount < 0 and not signed:
        raise InfracostError(field, "Must not be negative.")
    return usd_to_micros_round_up(amount)


def _walk_resources(resources: Any, path: str, counts: dict[str, int]) -> int:
    if resources is None:
        return 0
    if not isinstance(resources, list):
        raise InfracostError(path, "Expected a list of resources.")
    total = 0
    for index, resource in enumerate(resources):
        where = f"{path}[{index}]"
        if not isinstance(resource, dict):
            raise InfracostError(where, "Expected an object.")
        kind = resource.get("resourceType") or str(resource.get("name", "")).split(".")[0]
        if not isinstance(kind, str) or not kind:
            raise InfracostError(f"{where}.resourceType", "Required.")
        _amount(resource.get("monthlyCost"), f"{where}.monthlyCost")
        if kind in counts or len(counts) < MAX_RESOURCE_TYPES:
            counts[kind[:128]] = counts.get(kind[:128], 0) + 1
        total += 1
    return total


def plan_cost(document: Any) -> PlanCost:
    """What a plan costs: ``diffTotalMonthlyCost`` (else ``totalMonthlyCost``) and its resources."""
    if not isinstance(document, dict):
        raise InfracostError("infracost", "Expected the JSON object Infracost prints.")
    if "projects" not in document or not isinstance(document["projects"], list):
        raise InfracostError("infracost.projects", "Required: a list (infracost --format json).")
    currency = document.get("currency") or "USD"
    if currency != "USD":
        raise InfracostError("infracost.currency", f"Only USD is accepted, not {currency!r}.")
    total = _amount(document.get("totalMonthlyCost"), "infracost.totalMonthlyCost", signed=False)
    has_diff = document.get("diffTotalMonthlyCost") is not None
    diff = (
        _amount(document.get("diffTotalMonthlyCost"), "infracost.diffTotalMonthlyCost")
        if has_diff
        else total
    )
    hourly_field = "diffTotalHourlyCost" if has_diff else "totalHourlyCost"
    hourly = _amount(document.get(hourly_field), f"infracost.{hourly_field}")
    counts: dict[str, int] = {}
    resources = 0
    names = []
    for index, project in enumerate(document["projects"]):
        where = f"infracost.projects[{index}]"
        if not isinstance(project, dict):
            raise InfracostError(where, "Expected an object.")
        names.append(str(project.get("name", ""))[:200])
        breakdown = project.get("breakdown")
        if breakdown is None:
            continue
        if not isinstance(breakdown, dict):
            raise InfracostError(f"{where}.breakdown", "Expected an object.")
        resources += _walk_resources(
            breakdown.get("resources"), f"{where}.breakdown.resources", counts
        )
    return PlanCost(
        monthly_micros=max(diff, 0),
        hourly_micros=max(hourly, 0),
        diff_monthly_micros=diff,
        total_monthly_micros=total,
        resource_types=counts,
        resources=resources,
        projects=names[:20],
        currency=currency,
    )
