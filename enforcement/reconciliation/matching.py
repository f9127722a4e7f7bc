"""Match bill lines to committed reservations. Pure: candidates come in, decisions go out.

A cloud bill line (FOCUS) matches, in this order:
1. an explicit reference: ``x_TollgateReservationId`` or a ``tollgate-reservation`` /
   ``tollgate-decision`` tag (any reservation of the tenant; its state is checked later);
2. its ``ResourceId`` equal to the gated request's ``resource.id``, among committed
   reservations created before the charge period ended (several: the one committed within the
   charge period; still several: ambiguous);
3. its tags containing every label of the gated request, committed within the charge period.
An LLM usage line (provider project + time window) is shared among the committed LLM
reservations of that window whose project (slug or ``provider_project`` label) is the line's
project, in proportion to their reported cost.
Anything else is reported with the reason; nothing is dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from controlplane.core.money import usd_to_micros_round_up as usd_to_micros
from enforcement.reconciliation.lines import BillLine

LLM_SOURCES = ("llm",)


@dataclass(frozen=True)
class Candidate:
    id: str
    decision_id: str
    state: str
    source: str
    project_slug: str
    resource_id: str
    labels: dict[str, str]
    created_at: datetime
    resolved_at: datetime | None
    reported_micros: int


@dataclass
class Matched:
    reservation_id: str
    line_numbers: list[int] = field(default_factory=list)
    amount_micros: int = 0


@dataclass(frozen=True)
class Unmatched:
    line_numbers: tuple[int, ...]
    outcome: str  # unmatched | ambiguous | invalid
    reason: str
    amount_micros: int
    external_ref: str = ""


def _within(moment: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    return moment is not None and start is not None and end is not None and start <= moment < end


def match_lines(
    lines: list[BillLine], candidates: list[Candidate]
) -> tuple[dict[str, Matched], list[Unmatched]]:
    """Group line amounts per reservation; everything else is an ``Unmatched`` with a reason."""
    by_id = {c.id: c for c in candidates}
    by_decision = {c.decision_id: c for c in candidates}
    committed = [c for c in candidates if c.state == "committed"]
    by_resource: dict[str, list[Candidate]] = defaultdict(list)
    for c in committed:
        if c.resource_id:
            by_resource[c.resource_id].append(c)
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    numbers: dict[str, list[int]] = defaultdict(list)
    unmatched: list[Unmatched] = []
    llm_groups: dict[tuple, list[BillLine]] = defaultdict(list)

    for line in lines:
        if line.invalid:
            unmatched.append(Unmatched(line.line_numbers, "invalid", line.invalid, 0))
            continue
        if line.currency != "USD":
            unmatched.append(
                Unmatched(
                    line.line_numbers,
                    "unmatched",
                    f"currency {line.currency or '(none)'} ({line.amount} {line.currency}): "
                    "budgets are in USD",
                    0,
                )
            )
            continue
        if line.llm:
            llm_groups[(line.period_start, line.period_end, line.provider_project)].append(line)
            continue
        found, outcome, reason = _match_bill_line(line, by_id, by_decision, by_resource, committed)
        if found is None:
            unmatched.append(
                Unmatched(
                    line.line_numbers,
                    outcome,
                    reason,
                    usd_to_micros(line.amount),
                    external_ref=line.reservation_ref or line.resource_id,
                )
            )
            continue
        amounts[found.id] += line.amount
        numbers[found.id].extend(line.line_numbers)

    matched = {
        rid: Matched(rid, sorted(numbers[rid]), usd_to_micros(total))
        for rid, total in amounts.items()
    }
    for (start, end, project), group in llm_groups.items():
        _share_llm(group, start, end, project, committed, matched, unmatched)
    return matched, unmatched


def _match_bill_line(line, by_id, by_decision, by_resource, committed):
    ref = line.reservation_ref
    if ref:
        found = by_id.get(ref) or by_decision.get(ref)
        if found is None:
            return None, "unmatched", f"no reservation or decision {ref} in this tenant"
        return found, "", ""
    if line.resource_id:
        resource = [
            c
            for c in by_resource.get(line.resource_id, [])
            if line.period_end is None or c.created_at < line.period_end
        ]
        if len(resource) > 1:
            resource = [
                c for c in resource if _within(c.resolved_at, line.period_start, line.period_end)
            ]
            if len(resource) > 1:
                ids = ", ".join(sorted(c.id for c in resource))
                return None, "ambiguous", f"resource {line.resource_id} matches {ids}"
        if len(resource) == 1:
            return resource[0], "", ""
    if line.tags:
        tagged = [
            c
            for c in committed
            if c.labels
            and all(line.tags.get(k) == v for k, v in c.labels.items())
            and _within(c.resolved_at, line.period_start, line.period_end)
        ]
        if len(tagged) == 1:
            return tagged[0], "", ""
        if len(tagged) > 1:
            ids = ", ".join(sorted(c.id for c in tagged))
            return None, "ambiguous", f"tags match {ids} in the charge period"
    return (
        None,
        "unmatched",
        (
            "no committed reservation matches its reservation tag, resource id or tags "
            "in the charge period"
        ),
    )


def _share_llm(group, start, end, project, committed, matched, unmatched) -> None:
    total = usd_to_micros(sum((line.amount for line in group), Decimal(0)))
    line_numbers = sorted(n for line in group for n in line.line_numbers)
    window = [
        c
        for c in committed
        if c.source in LLM_SOURCES
        and _within(c.resolved_at, start, end)
        and (not project or project in (c.project_slug, c.labels.get("provider_project")))
    ]
    if not window:
        unmatched.append(
            Unmatched(
                tuple(line_numbers),
                "unmatched",
                f"no committed LLM reservation of project {project or '(any)'} "
                f"in {start.isoformat() if start else '?'} .. {end.isoformat() if end else '?'}",
                total,
                external_ref=project,
            )
        )
        return
    for candidate, share in zip(
        window, split(total, [c.reported_micros for c in window]), strict=True
    ):
        entry = matched.setdefault(candidate.id, Matched(candidate.id))
        entry.amount_micros += share
        entry.line_numbers = sorted(set(entry.line_numbers) | set(line_numbers))


def split(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (equal when all are 0); the parts sum to
    ``total`` exactly (largest remainders get the leftover micro-dollars)."""
    if not weights:
        return []
    weights = [max(w, 0) for w in weights]
    if sum(weights) == 0:
        weights = [1] * len(weights)
    whole = sum(weights)
    parts = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: -((total * weights[i]) % whole))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts
