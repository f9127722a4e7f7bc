"""FOCUS 1.x cost and usage CSV (FinOps Open Cost and Usage Specification).

Columns read: ``BilledCost``, ``BillingCurrency``, ``ChargePeriodStart``, ``ChargePeriodEnd``
(required), ``ChargeCategory``, ``ChargeDescription``, ``ResourceId``, ``Tags`` (a JSON object
of key/values) and the custom column ``x_TollgateReservationId`` (optional). A line names its
reservation through ``x_TollgateReservationId`` or a ``tollgate-reservation`` /
``tollgate-decision`` tag; otherwise matching falls back to the resource id and tags.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_datetime

from enforcement.reconciliation.lines import BillFormatError, BillLine

REQUIRED = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd")
RESERVATION_TAGS = ("tollgate-reservation", "tollgate_reservation", "tollgate:reservation")
DECISION_TAGS = ("tollgate-decision", "tollgate_decision", "tollgate:decision")


def _tags(raw: str) -> dict[str, str]:
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("Tags must be a JSON object")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def parse_focus_csv(text: str) -> list[BillLine]:
    """Every data row as a BillLine (rows that cannot be read carry ``invalid``)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise BillFormatError(
            "Not a FOCUS cost and usage file: missing column(s) " + ", ".join(missing) + ".",
            errors=[
                {"field": c, "message": "Missing column.", "code": "required"} for c in missing
            ],
        )
    lines = []
    for number, row in enumerate(reader, start=2):  # row 1 is the header
        lines.append(_line(number, row))
    return lines


def _line(number: int, row: dict) -> BillLine:
    description = (row.get("ChargeDescription") or "")[:200]
    try:
        amount = Decimal((row.get("BilledCost") or "").strip())
        if not amount.is_finite():
            raise InvalidOperation
        tags = _tags(row.get("Tags") or "")
        start = parse_datetime((row.get("ChargePeriodStart") or "").strip().replace(" ", "T"))
        end = parse_datetime((row.get("ChargePeriodEnd") or "").strip().replace(" ", "T"))
        if start is None or end is None or start.tzinfo is None or end.tzinfo is None:
            raise ValueError("ChargePeriodStart/End must be ISO 8601 times with a zone")
    except (InvalidOperation, ValueError) as exc:
        return BillLine(
            line_numbers=(number,),
            amount=Decimal(0),
            currency="",
            period_start=None,
            period_end=None,
            description=description,
            invalid=f"unreadable row: {exc or 'BilledCost is not a number'}"[:300],
        )
    explicit = (row.get("x_TollgateReservationId") or "").strip()
    explicit = explicit or next((tags[k] for k in RESERVATION_TAGS if tags.get(k)), "")
    explicit = explicit or next((tags[k] for k in DECISION_TAGS if tags.get(k)), "")
    return BillLine(
        line_numbers=(number,),
        amount=amount,
        currency=(row.get("BillingCurrency") or "").strip().upper(),
        period_start=start,
        period_end=end,
        reservation_ref=explicit,
        resource_id=(row.get("ResourceId") or "").strip(),
        tags=tags,
        description=description,
    )
