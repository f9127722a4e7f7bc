"""An accept-only fast check of gate request bodies, in front of the DRF serializer.

Building ``GateDecisionRequestSerializer`` deep-copies its fields on every request, which costs
more than the rest of the request's validation put together. Almost every gate call is a plain
well-formed body, so this module accepts exactly the bodies the serializer accepts *unchanged*
(no trimming, no coercion) and returns the same validated data; anything else, including every
invalid body, returns None and goes through the serializer, which words the errors.
``tests/enforcement/test_gate_fastparse.py`` checks the two agree on generated bodies.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.core.jsonlimits import ATTRIBUTES_LIMITS, free_form_problem, labels_problem
from controlplane.core.money import MoneyError, parse_usd
from enforcement.api.serializers import GateDecisionRequestSerializer, ResourceSerializer

_SOURCE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
_ENVIRONMENT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_MONEY = ("estimated_cost_usd", "monthly_delta_usd", "hourly_delta_usd")
# The serializer's own field lists; a field added there without a check below falls back.
_KNOWN = frozenset(GateDecisionRequestSerializer._declared_fields)
_RESOURCE_KEYS = frozenset(ResourceSerializer._declared_fields)


def _text(value: Any, max_length: int, *, blank: bool = False) -> bool:
    """A string the serializer's CharField keeps as is (trimmed already, no NUL, in bounds)."""
    return (
        type(value) is str
        and len(value) <= max_length
        and (blank or value != "")
        and "\x00" not in value
        and value == value.strip()
    )


def gate_body_fast(data: Any) -> dict | None:
    """The serializer's ``validated_data`` for a plain valid body, else None."""
    if type(data) is not dict or not data.keys() <= _KNOWN:
        return None
    out: dict[str, Any] = {"source": "api", "action": "", "labels": {}, "requester": ""}
    for name, value in data.items():
        if name == "source":
            if not (_text(value, 32) and _SOURCE_RE.match(value)):
                return None
        elif name == "project":
            if not (_text(value, 63) and _SLUG_RE.match(value)):
                return None
        elif name == "environment":
            if not (_text(value, 63) and _ENVIRONMENT_RE.match(value)):
                return None
        elif name == "action":
            if not _text(value, 200, blank=True):
                return None
        elif name == "requester":
            if not _text(value, 254, blank=True):
                return None
        elif name == "resource":
            if type(value) is not dict or not value.keys() <= _RESOURCE_KEYS:
                return None
            if "type" in value and not _text(value["type"], 200, blank=True):
                return None
            if "id" in value and not _text(value["id"], 500, blank=True):
                return None
            if "attributes" in value and (
                free_form_problem(value["attributes"], ATTRIBUTES_LIMITS) is not None
            ):
                return None
            value = dict(value)
        elif name in _MONEY:
            if value is not None:
                try:
                    value = parse_usd(value)
                except MoneyError:
                    return None
        elif name == "labels":
            if labels_problem(value) is not None or not all(_text(v, 200) for v in value.values()):
                return None
            value = dict(value)
        elif name == "ttl_seconds":
            if value is not None and not (type(value) is int and value >= 1):
                return None
        elif name == "approval_token":
            if value is not None and not _text(value, 8192):
                return None
        elif name == "idempotency_key":
            if not (_text(value, 255) and value.isprintable() and value.isascii()):
                return None
        else:  # a field this check does not know yet: the serializer decides
            return None
        out[name] = value
    return out
