"""The catalog entry in use for a model, cached per process.

The current version is asked of the database at most every ``PRICE_CATALOG_CACHE_SECONDS``;
entries are cached per (version, model), so a new import takes over within that time and a
version's prices never change under a cached entry (versions are immutable).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings

from billing.models import ModelPrice, PriceCatalog
from billing.pricing.cost import frozen_prices


@dataclass(frozen=True)
class CatalogPrice:
    model: str
    provider: str
    mode: str
    catalog_version: int
    catalog_sha256: str
    prices: dict  # frozen form (billing.pricing.cost.frozen_prices)
    max_input_tokens: int | None
    max_output_tokens: int | None


_lock = threading.Lock()
_current: tuple[float, int, str] | None = None  # (checked at, version, sha256)
_entries: dict[tuple[int, str], CatalogPrice | None] = {}


def clear() -> None:
    global _current
    with _lock:
        _current = None
        _entries.clear()


def _current_version() -> tuple[int, str] | None:
    global _current
    now = time.monotonic()
    cached = _current
    if cached is not None and now - cached[0] < settings.PRICE_CATALOG_CACHE_SECONDS:
        return cached[1], cached[2]
    row = PriceCatalog.objects.order_by("-version").values_list("version", "sha256").first()
    if row is None:
        return None
    with _lock:
        if _current is None or _current[1] != row[0]:
            _entries.clear()
        _current = (now, row[0], row[1])
    return row


def price_for(model: str) -> CatalogPrice | None:
    """The catalog entry in use for ``model`` (exact name), or None."""
    current = _current_version()
    if current is None:
        return None
    version, sha = current
    key = (version, model)
    if key in _entries:
        return _entries[key]
    row = (
        ModelPrice.objects.filter(catalog__version=version, model=model)
        .select_related("catalog")
        .first()
    )
    entry = None
    if row is not None:
        entry = CatalogPrice(
            model=row.model,
            provider=row.provider,
            mode=row.mode,
            catalog_version=version,
            catalog_sha256=sha,
            prices=frozen_prices(row),
            max_input_tokens=row.max_input_tokens,
            max_output_tokens=row.max_output_tokens,
        )
    with _lock:
        if len(_entries) > 10_000:
            _entries.clear()
        _entries[key] = entry
    return entry
