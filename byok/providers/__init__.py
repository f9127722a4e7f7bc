"""BYOK provider adapters; importing this package registers every built-in provider.

To add a provider: write one module that defines a ``ProviderAdapter`` subclass decorated with
``@register`` and add one import line below.
"""

from byok.providers import anthropic, openai  # noqa: F401  (imported to register adapters)
from byok.providers.base import (
    PROVIDER_FAULT_STATUSES,
    ProbeResult,
    ProbeStatus,
    ProviderAdapter,
)
from byok.providers.registry import UnknownProvider, get_adapter, provider_names, register

__all__ = [
    "PROVIDER_FAULT_STATUSES",
    "ProbeResult",
    "ProbeStatus",
    "ProviderAdapter",
    "UnknownProvider",
    "get_adapter",
    "provider_names",
    "register",
]
