"""Registry of provider adapters keyed by their explicit ``name``.

The provider for a credential or request always comes from an explicit selection (the model
catalog or the request); it is never inferred from the shape of a key or a model name.
"""

from __future__ import annotations

from typing import TypeVar

from byok.providers.base import ProviderAdapter

_REGISTRY: dict[str, type[ProviderAdapter]] = {}

A = TypeVar("A", bound=type[ProviderAdapter])


class UnknownProvider(KeyError):
    """Raised when no adapter is registered under the requested provider name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown provider {self.name!r}"


def register(adapter_cls: A) -> A:
    """Class decorator adding an adapter to the registry under ``adapter_cls.name``."""
    name = getattr(adapter_cls, "name", None)
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise ValueError(f"{adapter_cls.__name__}.name must be a non-empty lowercase string")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not adapter_cls:
        raise ValueError(
            f"provider {name!r} already registered by {existing.__module__}.{existing.__name__}"
        )
    _REGISTRY[name] = adapter_cls
    return adapter_cls


def get_adapter(name: str) -> ProviderAdapter:
    """Return an adapter instance for the provider called ``name`` or raise UnknownProvider."""
    try:
        adapter_cls = _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownProvider(name) from None
    return adapter_cls()


def provider_names() -> tuple[str, ...]:
    """Sorted names of every registered provider."""
    return tuple(sorted(_REGISTRY))
