"""LLM provider usage: the OpenAI Costs API page (``GET /v1/organization/costs``,
``group_by=project_id,line_item``) as exported JSON::

    {"object": "page", "data": [{"object": "bucket", "start_time": 1733011200,
      "end_time": 1733097600, "results": [{"object": "organization.costs.result",
      "amount": {"value": 1.2345, "currency": "usd"}, "line_item": "gpt-4o, input",
      "project_id": "proj_abc"}]}], "has_more": false, "next_page": null}

Each result is a line for its time window and provider project; amounts are read as decimals
from the JSON text (never through a float).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from enforcement.reconciliation.lines import BillFormatError, BillLine


def parse_openai_costs(text: str) -> list[BillLine]:
    try:
        page = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise BillFormatError(f"Not JSON: {exc}") from None
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        raise BillFormatError('Expected an OpenAI costs page: {"object": "page", "data": [...]}.')
    lines, number = [], 0
    for bucket in page["data"]:
        if not isinstance(bucket, dict):
            raise BillFormatError("Each item of `data` must be a bucket object.")
        try:
            start = datetime.fromtimestamp(int(bucket["start_time"]), tz=UTC)
            end = datetime.fromtimestamp(int(bucket["end_time"]), tz=UTC)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise BillFormatError("Each bucket needs integer start_time and end_time.") from None
        for result in bucket.get("results") or []:
            number += 1
            lines.append(_line(number, result, start, end))
    return lines


def _line(number: int, result, start: datetime, end: datetime) -> BillLine:
    amount = (result or {}).get("amount") if isinstance(result, dict) else None
    value = amount.get("value") if isinstance(amount, dict) else None
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        return BillLine(
            line_numbers=(number,),
            amount=Decimal(0),
            currency="",
            period_start=start,
            period_end=end,
            llm=True,
            invalid="result without amount.value",
        )
    return BillLine(
        line_numbers=(number,),
        amount=Decimal(value),
        currency=str(amount.get("currency") or "").upper(),
        period_start=start,
        period_end=end,
        llm=True,
        provider_project=str(result.get("project_id") or ""),
        description=str(result.get("line_item") or "")[:200],
    )
