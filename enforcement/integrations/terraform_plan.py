"""A Terraform plan JSON (``terraform show -json``) -> what its resource_changes cost per month.

Each created resource is charged its type's ``unit_prices.terraform.resource_monthly_usd``,
each deleted one credited; an update or a replace (delete + create of the same address) adds
no resource. The summary goes into the gate request's ``resource.attributes`` so that policy
rules can read it (``request.resource.attributes.deletes > 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.core.money import MoneyError, parse_usd

MAX_CHANGES = 50  # listed in the attributes (counts cover all of them)
# Attributes of before/after that usually set the price; shown to rules when they change.
SIZING_KEYS = (
    "instance_type",
    "instance_class",
    "machine_type",
    "node_count",
    "desired_size",
    "size",
    "sku_name",
    "allocated_storage",
    "min_size",
    "max_size",
)


class PlanError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class PlanChanges:
    creates: int = 0
    updates: int = 0
    replaces: int = 0
    deletes: int = 0
    monthly_micros: int = 0  # signed: deletions credit
    priced: dict[str, int] = field(default_factory=dict)  # type -> micros charged (signed)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def attributes(self) -> dict[str, Any]:
        from controlplane.core.money import format_usd

        return {
            "creates": self.creates,
            "updates": self.updates,
            "replaces": self.replaces,
            "deletes": self.deletes,
            "monthly_delta_usd": format_usd(self.monthly_micros),
            "changes": self.changes[:MAX_CHANGES],
        }


def _action(actions: Any, path: str) -> str:
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise PlanError(path, "Expected a list of action names.")
    kinds = set(actions)
    if kinds == {"create"}:
        return "create"
    if kinds == {"delete"}:
        return "delete"
    if kinds == {"delete", "create"}:
        return "replace"
    if kinds == {"update"}:
        return "update"
    return "no-op"  # no-op, read, forget


def _sizing(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    return {
        k: value[k]
        for k in SIZING_KEYS
        if k in value and isinstance(value[k], str | int | float) and not isinstance(value[k], bool)
    }


def plan_changes(plan: Any, prices: dict[str, str]) -> PlanChanges:
    """Cost the plan's resource_changes with the per-type monthly prices of the policy."""
    if not isinstance(plan, dict):
        raise PlanError("plan", "Expected the JSON object `terraform show -json` prints.")
    changes = plan.get("resource_changes") or []
    if not isinstance(changes, list):
        raise PlanError("resource_changes", "Expected a list.")
    try:
        unit = {kind: parse_usd(str(value)) for kind, value in (prices or {}).items()}
    except MoneyError as exc:
        raise PlanError("unit_prices.terraform", str(exc)) from exc
    out = PlanChanges()
    for index, change in enumerate(changes):
        path = f"resource_changes[{index}]"
        if not isinstance(change, dict) or not isinstance(change.get("change"), dict):
            raise PlanError(path, "Expected an object with `change`.")
        kind = str(change.get("type", ""))[:128]
        action = _action(change["change"].get("actions"), f"{path}.change.actions")
        if action == "no-op":
            continue
        setattr(out, f"{action}s", getattr(out, f"{action}s") + 1)
        delta = {"create": 1, "delete": -1}.get(action, 0) * unit.get(kind, 0)
        out.monthly_micros += delta
        if delta:
            out.priced[kind] = out.priced.get(kind, 0) + delta
        before = _sizing(change["change"].get("before"))
        after = _sizing(change["change"].get("after"))
        entry: dict[str, Any] = {
            "address": str(change.get("address", ""))[:200],
            "type": kind,
            "action": action,
        }
        if before != after:
            entry["before"], entry["after"] = before, after
        out.changes.append(entry)
    return out
