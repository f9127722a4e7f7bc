"""Anthropic adapter: ``x-api-key`` + ``anthropic-version`` auth, probed with ``GET /v1/models``."""

from __future__ import annotations

from byok.providers.base import ProviderAdapter
from byok.providers.registry import register

ANTHROPIC_VERSION = "2023-06-01"


@register
class AnthropicAdapter(ProviderAdapter):
    """Anthropic API (api.anthropic.com)."""

    name = "anthropic"
    display_name = "Anthropic"
    default_base_url = "https://api.anthropic.com"
    supports_probe = True

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """API-key header plus the mandatory API version header."""
        return {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}
