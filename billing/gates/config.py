"""Gate settings read and checked in one place (at start-up and per request)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.dateparse import parse_datetime

log = structlog.get_logger(__name__)

FAIL_MODES = ("open", "closed")


@dataclass(frozen=True)
class Bypass:
    until: datetime
    reason: str


def billing_bypass(now: datetime | None = None) -> Bypass | None:
    """The BILLING_BYPASS in force now, or None (unset or expired)."""
    raw = settings.BILLING_BYPASS_UNTIL
    if not raw:
        return None
    until = _parse_until(raw)
    if (now or datetime.now(UTC)) >= until:
        return None
    return Bypass(until=until, reason=settings.BILLING_BYPASS_REASON)


def _parse_until(raw: str) -> datetime:
    until = parse_datetime(raw)
    if until is None or until.tzinfo is None:
        raise ImproperlyConfigured(
            f"BILLING_BYPASS_UNTIL={raw!r} must be an ISO 8601 time with a zone, "
            "e.g. 2026-12-03T18:00:00Z."
        )
    return until


def check_settings(now: datetime | None = None) -> None:
    """Refuse to start with a configuration that could let money through silently."""
    now = now or datetime.now(UTC)
    if settings.BILLING_FAIL_MODE != "closed":
        raise ImproperlyConfigured(
            f"BILLING_FAIL_MODE={settings.BILLING_FAIL_MODE!r}: money never fails open. "
            "Use BILLING_BYPASS_UNTIL + BILLING_BYPASS_REASON for a time-limited, logged bypass."
        )
    for name in ("LIFECYCLE_FAIL_MODE", "PROTECTION_FAIL_MODE"):
        if getattr(settings, name) not in FAIL_MODES:
            raise ImproperlyConfigured(f"{name} must be one of {FAIL_MODES}.")
    if settings.BILLING_BYPASS_UNTIL:
        until = _parse_until(settings.BILLING_BYPASS_UNTIL)
        if not settings.BILLING_BYPASS_REASON.strip():
            raise ImproperlyConfigured("BILLING_BYPASS_UNTIL needs a BILLING_BYPASS_REASON.")
        limit = now + timedelta(hours=settings.BILLING_BYPASS_MAX_HOURS)
        if until > limit:
            raise ImproperlyConfigured(
                f"BILLING_BYPASS_UNTIL={until.isoformat()} is more than "
                f"{settings.BILLING_BYPASS_MAX_HOURS} h ahead; a bypass is time-limited."
            )
        if until > now:
            log.error(
                "billing_bypass_configured",
                until=until.isoformat(),
                reason=settings.BILLING_BYPASS_REASON,
            )
