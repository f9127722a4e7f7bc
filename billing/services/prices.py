"""Price catalog imports: from a file or URL, with a shrink guard and last-good fallback.

A refresh never leaves the gateway without prices: a fetch that fails (after retries), a
document that does not parse, or one that lost more than ``PRICE_CATALOG_MAX_SHRINK_PERCENT``
of the models of the catalog in use is recorded as a ``PriceCatalogFetch`` and the last good
version stays in use. An identical document adds no version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog
from django.conf import settings
from django.db import transaction

from billing.models import ModelPrice, PriceCatalog, PriceCatalogFetch
from billing.pricing.parse import PriceDocumentError, entries_sha256, parse_document

log = structlog.get_logger(__name__)
Outcome = PriceCatalogFetch.Outcome


class FetchError(Exception):
    """The source could not be read (after every retry)."""


@dataclass(frozen=True)
class ImportResult:
    outcome: str
    catalog: PriceCatalog | None  # the catalog in use afterwards
    detail: str = ""
    attempts: int = 1


def fetch_source(source: str, *, timeout: float | None = None, retries: int | None = None):
    """The document's bytes from an http(s) URL or a file path, and how many tries it took."""
    if not source.startswith(("http://", "https://")):
        try:
            return Path(source).read_bytes(), 1
        except OSError as exc:
            raise FetchError(f"cannot read {source}: {exc.strerror or exc}") from None
    timeout = settings.PRICE_CATALOG_TIMEOUT_SECONDS if timeout is None else timeout
    retries = settings.PRICE_CATALOG_RETRIES if retries is None else retries
    last = ""
    for attempt in range(1, retries + 2):
        try:
            with httpx.Client(timeout=timeout, follow_redirects=True) as client:
                response = client.get(source)
            if response.status_code == 200:
                return response.content, attempt
            last = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # a 4xx will not change on a retry
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        if attempt <= retries:
            time.sleep(min(settings.PRICE_CATALOG_RETRY_BACKOFF_SECONDS * attempt, 5.0))
    raise FetchError(f"{source}: {last}")


def current_catalog() -> PriceCatalog | None:
    return PriceCatalog.objects.order_by("-version").first()


def _record(source: str, outcome: str, detail: str, attempts: int, catalog) -> ImportResult:
    PriceCatalogFetch.objects.create(
        source=source[:500],
        outcome=outcome,
        detail=detail[:500],
        attempts=attempts,
        catalog=catalog,
    )
    log_method = log.info if outcome in (Outcome.IMPORTED, Outcome.UNCHANGED) else log.warning
    log_method("price_catalog_fetch", source=source, outcome=outcome, detail=detail)
    return ImportResult(outcome, catalog, detail, attempts)


def price_catalog_import(
    *, text: bytes | str, source: str, force: bool = False, attempts: int = 1
) -> ImportResult:
    """Parse and store a new catalog version (or refuse it, keeping the last good one)."""
    current = current_catalog()
    try:
        entries = parse_document(text)
    except PriceDocumentError as exc:
        return _record(source, Outcome.FAILED, str(exc), attempts, current)
    sha = entries_sha256(entries)
    if current is not None and current.sha256 == sha:
        return _record(source, Outcome.UNCHANGED, "same prices", attempts, current)
    floor = 100 - settings.PRICE_CATALOG_MAX_SHRINK_PERCENT
    if current is not None and not force and len(entries) * 100 < current.model_count * floor:
        detail = (
            f"{len(entries)} models against {current.model_count} in v{current.version}: more "
            f"than {settings.PRICE_CATALOG_MAX_SHRINK_PERCENT}% fewer; kept v{current.version} "
            "(import with --force if the shrink is real)"
        )
        return _record(source, Outcome.REFUSED_SHRINK, detail, attempts, current)
    with transaction.atomic():
        # The version number is taken under a lock so two importers cannot both claim it.
        last = PriceCatalog.objects.select_for_update().order_by("-version").first()
        catalog = PriceCatalog.objects.create(
            version=(last.version + 1) if last else 1,
            sha256=sha,
            source=source[:500],
            model_count=len(entries),
            forced=force,
        )
        ModelPrice.objects.bulk_create(
            [
                ModelPrice(
                    catalog=catalog,
                    model=e.model,
                    provider=e.provider,
                    mode=e.mode,
                    input_pusd=e.input_pusd,
                    output_pusd=e.output_pusd,
                    cache_read_pusd=e.cache_read_pusd,
                    cache_creation_pusd=e.cache_creation_pusd,
                    reasoning_pusd=e.reasoning_pusd,
                    max_input_tokens=e.max_input_tokens,
                    max_output_tokens=e.max_output_tokens,
                    tiers=e.tiers,
                )
                for e in entries
            ],
            batch_size=1000,
        )
        result = _record(
            source,
            Outcome.IMPORTED,
            f"v{catalog.version}: {len(entries)} models",
            attempts,
            catalog,
        )
    return result


def price_catalog_refresh(*, source: str | None = None, force: bool = False) -> ImportResult:
    """Fetch and import; a failed fetch keeps the catalog in use (last good) and is recorded."""
    source = source or settings.PRICE_CATALOG_SOURCE
    if not source:
        return ImportResult(Outcome.UNCHANGED, current_catalog(), "no PRICE_CATALOG_SOURCE set")
    try:
        text, attempts = fetch_source(source)
    except FetchError as exc:
        retries = settings.PRICE_CATALOG_RETRIES + 1
        return _record(source, Outcome.FAILED, str(exc), retries, current_catalog())
    return price_catalog_import(text=text, source=source, force=force, attempts=attempts)
