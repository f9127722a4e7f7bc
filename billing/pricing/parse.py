"""Parse a LiteLLM-format price document into integer prices. Pure: no ORM, no I/O.

Each entry maps a model name to per-token USD prices written as JSON numbers
(``"input_cost_per_token": 2.5e-06``). They are read as decimals from the JSON text (never
through a float) and stored as integer pico-dollars per token (1e-12 USD), rounded up.
Long-context tiers (``input_cost_per_token_above_200k_tokens`` ...) become a list of
``{"above": 200000, "input": .., "output": .., "cache_read": .., "cache_creation": ..}``.
Entries without a token price (images, audio seconds, rerank per query) are skipped: the
gateway prices tokens only.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from decimal import ROUND_CEILING, Decimal

from controlplane.core.canonical import canonical_sha256

PUSD_PER_USD = 10**12
MAX_PUSD = 10**12  # 1 USD per token: anything above is a broken document, not a price
_TIER_RE = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost)_above_(\d+)k_tokens$"
)
_TIER_FIELD = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_creation",
}
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


class PriceDocumentError(ValueError):
    """The document is not a LiteLLM-format price map."""


@dataclass(frozen=True)
class PriceEntry:
    model: str
    provider: str
    mode: str
    input_pusd: int
    output_pusd: int
    cache_read_pusd: int | None = None
    cache_creation_pusd: int | None = None
    reasoning_pusd: int | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    tiers: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def to_pusd(value) -> int | None:
    """A per-token USD price (decimal from the JSON text) as pico-dollars, rounded up."""
    if value is None or isinstance(value, bool) or not isinstance(value, Decimal | int):
        return None
    dec = Decimal(value)
    if not dec.is_finite() or dec < 0:
        return None
    pusd = int((dec * PUSD_PER_USD).to_integral_value(rounding=ROUND_CEILING))
    return pusd if pusd <= MAX_PUSD else None


def _count(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    number = int(value)
    return number if 0 < number < 2**31 else None


def _tiers(raw: dict) -> list[dict]:
    tiers: dict[int, dict] = {}
    for key, value in raw.items():
        match = _TIER_RE.match(key)
        if not match:
            continue
        pusd = to_pusd(value)
        if pusd is None:
            continue
        above = int(match.group(2)) * 1000
        tiers.setdefault(above, {"above": above})[_TIER_FIELD[match.group(1)]] = pusd
    return [tiers[above] for above in sorted(tiers)]


def parse_entry(model: str, raw) -> PriceEntry | None:
    """One model's prices, or None when the entry prices no tokens."""
    if not isinstance(raw, dict) or model == "sample_spec" or not model or len(model) > 200:
        return None
    input_pusd = to_pusd(raw.get("input_cost_per_token"))
    output_pusd = to_pusd(raw.get("output_cost_per_token"))
    if input_pusd is None and output_pusd is None:
        return None
    provider = raw.get("litellm_provider")
    if not isinstance(provider, str) or not provider or len(provider) > 64:
        return None
    mode = raw.get("mode") if isinstance(raw.get("mode"), str) else ""
    return PriceEntry(
        model=model,
        provider=provider,
        mode=mode[:32],
        input_pusd=input_pusd or 0,
        output_pusd=output_pusd or 0,
        cache_read_pusd=to_pusd(raw.get("cache_read_input_token_cost")),
        cache_creation_pusd=to_pusd(raw.get("cache_creation_input_token_cost")),
        reasoning_pusd=to_pusd(raw.get("output_cost_per_reasoning_token")),
        max_input_tokens=_count(raw.get("max_input_tokens")),
        max_output_tokens=_count(raw.get("max_output_tokens")),
        tiers=_tiers(raw),
    )


def parse_document(text: str | bytes) -> list[PriceEntry]:
    """Every priced model of a LiteLLM price map, sorted by name."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise PriceDocumentError(f"The document is larger than {MAX_DOCUMENT_BYTES} bytes.")
    try:
        data = json.loads(text, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PriceDocumentError(f"Not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PriceDocumentError("Expected a JSON object mapping model names to prices.")
    entries = [e for model, raw in data.items() if (e := parse_entry(model, raw)) is not None]
    if not entries:
        raise PriceDocumentError("The document prices no model per token.")
    return sorted(entries, key=lambda e: e.model)


def entries_sha256(entries: list[PriceEntry]) -> str:
    """The hash a catalog version is known by: canonical JSON of its parsed entries."""
    return canonical_sha256([e.as_dict() for e in entries])
