"""OpenAI adapter: ``Authorization: Bearer`` auth, probed with ``GET /v1/models``."""

from __future__ import annotations

from byok.providers.base import ProviderAdapter
from byok.providers.registry import register


@register
class OpenAIAdapter(ProviderAdapter):
    """OpenAI API (api.openai.com)."""

    name = "openai"
    display_name = "OpenAI"
    default_base_url = "https://api.openai.com"
    supports_probe = True

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Bearer token auth."""
        return {"authorization": f"Bearer {api_key}"}
