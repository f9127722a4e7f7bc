"""Price LLM usage with frozen prices, in integers. Pure: no ORM, no I/O.

``Usage`` is provider-neutral: ``input`` counts uncached input tokens only, ``cache_read`` and
``cache_creation`` the cached ones, ``output`` every output token (reasoning included) and
``reasoning`` the part of ``output`` that a model prices separately. Each provider's usage
object is normalised into it by ``usage_from_openai`` / ``usage_from_anthropic``, which know
their cache semantics (OpenAI's ``cached_tokens`` are inside ``prompt_tokens``; Anthropic's
``input_tokens`` exclude cache reads and writes).
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.pricing.parse import PUSD_PER_USD

PUSD_PER_MICRO = PUSD_PER_USD // 1_000_000


class UsageError(ValueError):
    """A usage object that is not what the provider sends."""


@dataclass(frozen=True)
class Usage:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0

    @property
    def prompt_total(self) -> int:
        return self.input + self.cache_read + self.cache_creation


def _tokens(obj: dict, key: str, *, required: bool = False) -> int:
    value = obj.get(key)
    if value is None:
        if required:
            raise UsageError(f"usage.{key} is required.")
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**40:
        raise UsageError(f"usage.{key} must be a non-negative integer.")
    return value


def usage_from_openai(usage: dict) -> Usage:
    """OpenAI chat/embeddings usage; ``cached_tokens`` are a part of ``prompt_tokens``."""
    if not isinstance(usage, dict):
        raise UsageError("usage must be an object.")
    prompt = _tokens(usage, "prompt_tokens", required=True)
    completion = _tokens(usage, "completion_tokens")
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    if not isinstance(prompt_details, dict) or not isinstance(completion_details, dict):
        raise UsageError("usage.*_tokens_details must be objects.")
    cached = min(_tokens(prompt_details, "cached_tokens"), prompt)
    reasoning = min(_tokens(completion_details, "reasoning_tokens"), completion)
    return Usage(input=prompt - cached, cache_read=cached, output=completion, reasoning=reasoning)


def usage_from_anthropic(usage: dict) -> Usage:
    """Anthropic Messages usage; ``input_tokens`` excludes cache reads and cache writes."""
    if not isinstance(usage, dict):
        raise UsageError("usage must be an object.")
    return Usage(
        input=_tokens(usage, "input_tokens", required=True),
        output=_tokens(usage, "output_tokens"),
        cache_read=_tokens(usage, "cache_read_input_tokens"),
        cache_creation=_tokens(usage, "cache_creation_input_tokens"),
    )


def usage_from(provider_format: str, usage: dict) -> Usage:
    if provider_format == "anthropic":
        return usage_from_anthropic(usage)
    return usage_from_openai(usage)


def _tier(prices: dict, prompt_tokens: int) -> dict:
    """The prices for a prompt of this size (a long-context tier overrides what it lists)."""
    chosen = dict(prices)
    for tier in prices.get("tiers") or []:
        if prompt_tokens > tier["above"]:
            chosen.update({k: v for k, v in tier.items() if k != "above"})
    return chosen


def _ceil_micros(pusd: int) -> int:
    return -(-pusd // PUSD_PER_MICRO)


def cost_micros(prices: dict, usage: Usage) -> int:
    """What ``usage`` costs at ``prices`` (frozen price dict), in micro-dollars, rounded up."""
    p = _tier(prices, usage.prompt_total)
    input_price = p["input"]
    cache_read = p.get("cache_read")
    cache_creation = p.get("cache_creation")
    reasoning = p.get("reasoning")
    total = usage.input * input_price
    total += usage.cache_read * (input_price if cache_read is None else cache_read)
    total += usage.cache_creation * (input_price if cache_creation is None else cache_creation)
    if reasoning is None:
        total += usage.output * p["output"]
    else:
        total += (usage.output - usage.reasoning) * p["output"] + usage.reasoning * reasoning
    return _ceil_micros(total)


def ceiling_micros(prices: dict, *, input_tokens: int, output_tokens: int) -> int:
    """The most ``input_tokens`` in and ``output_tokens`` out can cost at ``prices``: every input
    token at the dearest input rate (a cache write costs more than plain input), every output
    token at the dearest output rate, with the tier the prompt's size could reach."""
    p = _tier(prices, input_tokens)
    input_price = max(v for v in (p["input"], p.get("cache_creation")) if v is not None)
    output_price = max(v for v in (p["output"], p.get("reasoning")) if v is not None)
    return _ceil_micros(input_tokens * input_price + output_tokens * output_price)


def frozen_prices(entry) -> dict:
    """The prices a reservation freezes (from a ``ModelPrice`` or ``PriceEntry``)."""
    return {
        "input": entry.input_pusd,
        "output": entry.output_pusd,
        "cache_read": entry.cache_read_pusd,
        "cache_creation": entry.cache_creation_pusd,
        "reasoning": entry.reasoning_pusd,
        "tiers": list(entry.tiers or []),
    }
