"""Query parameters of list endpoints, parsed once and refused with a 400 + code when malformed.

Every filter value reaches a database query; anything that is not what the parameter means
(a month 13, a +99:00 offset, an unknown enum value, a 10 kB slug) is the client's error and
must never reach the database as a value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from controlplane.core.errors import CoreErrorCode, TollgateError

SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,63}$")
ENVIRONMENT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_MIN_YEAR, _MAX_YEAR = 1970, 9998


def invalid_param(name: str, message: str, detail: str | None = None) -> TollgateError:
    return TollgateError(
        CoreErrorCode.VALIDATION_FAILED,
        detail or f"The query parameter `{name}` is invalid: {message}",
        remediation="Fix the parameter named in `errors` (see /api/docs/ for the allowed values).",
        errors=[{"field": name, "message": message, "code": "invalid"}],
    )


def parse_timestamp(raw: str) -> datetime:
    """An ISO 8601 timestamp in UTC (UTC when it names no offset); ValueError says what is wrong."""
    message = "Must be an ISO 8601 timestamp, e.g. 2026-11-01T00:00:00Z."
    if not isinstance(raw, str) or len(raw) > 64:
        raise ValueError(message)
    try:
        value = parse_datetime(raw)
    except ValueError:  # well-formed but impossible: month 13, hour 25, offset +99:00
        value = None
    if value is None:
        raise ValueError(message)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):
        value = None
    if value is None or not _MIN_YEAR <= value.year <= _MAX_YEAR:
        raise ValueError(f"Must be between the years {_MIN_YEAR} and {_MAX_YEAR}.")
    return value


def timestamp_param(params, name: str) -> datetime | None:
    """``parse_timestamp`` of a query parameter, or None when absent or empty."""
    raw = params.get(name)
    if not raw:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        raise invalid_param(name, str(exc)) from exc


def choice_param(params, name: str, choices, *, default: str | None = None, upper: bool = False):
    """One of ``choices`` (case-folded to upper when ``upper``), the default when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    value = raw.upper() if upper else raw
    if value not in choices:
        raise invalid_param(name, f"Must be one of: {', '.join(choices)}.")
    return value


def pattern_param(params, name: str, pattern: re.Pattern, what: str) -> str | None:
    """A value matching ``pattern`` (slugs, environments, ids), or None when absent/empty."""
    raw = params.get(name)
    if not raw:
        return None
    if not pattern.match(raw):
        raise invalid_param(name, f"Must be {what}.")
    return raw
