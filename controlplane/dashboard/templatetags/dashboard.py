"""Display helpers: money in USD (never micro-dollars), percentages, outcome badges."""

from __future__ import annotations

import json

from django import template

from controlplane.core.money import format_usd

register = template.Library()


@register.filter
def usd(micros) -> str:
    """1234500000 -> "1,234.50 USD" (thousands separated, 2 to 6 decimals)."""
    if micros is None or micros == "":
        return "—"
    text = format_usd(int(micros))
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}.{frac} USD"


@register.filter
def usd_cents(micros) -> str:
    """A computed figure (burn rate, forecast) to the nearest cent."""
    if micros is None or micros == "":
        return "—"
    return usd(round(int(micros), -4))


@register.filter
def get(mapping, key):
    """``mapping[key]`` in a template (None when absent)."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def usd_text(value) -> str:
    """A USD decimal string from an API body ("1234.50") shown like ``usd``."""
    if value in (None, ""):
        return "—"
    sign = "-" if str(value).startswith("-") else ""
    whole, _, frac = str(value).lstrip("-").partition(".")
    return f"{sign}{int(whole):,}.{frac or '00'} USD"


@register.filter
def pct(ratio) -> str:
    return "—" if ratio is None else f"{float(ratio) * 100:.0f}%"


@register.filter
def bar_width(ratio) -> str:
    """CSS width of a utilisation bar, capped at 100% (the label shows the real figure)."""
    return f"{min(max(float(ratio or 0), 0.0), 1.0) * 100:.1f}%"


@register.filter
def outcome_class(outcome: str) -> str:
    return {
        "ALLOW": "ok",
        "ALLOW_WITH_CREDITS": "info",
        "REQUIRE_APPROVAL": "near",
        "DENY": "over",
    }.get(outcome, "")


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def compact_json(value) -> str:
    """A ledger payload on one line (keys sorted)."""
    return json.dumps(value, separators=(", ", ": "), sort_keys=True, default=str)
