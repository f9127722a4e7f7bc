"""``manage.py import_prices [SOURCE] [--force]``: import the model price catalog now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.models import PriceCatalogFetch
from billing.services.prices import price_catalog_refresh


class Command(BaseCommand):
    help = (
        "Import a LiteLLM-format model price map from a file or URL (default: "
        "PRICE_CATALOG_SOURCE). A failed or shrinking import keeps the catalog in use."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", default=None, help="File path or http(s) URL.")
        parser.add_argument(
            "--force", action="store_true", help="Import even past the shrink guard."
        )

    def handle(self, *args, source=None, force=False, **options):
        result = price_catalog_refresh(source=source, force=force)
        line = f"{result.outcome}: {result.detail}"
        if result.outcome in (PriceCatalogFetch.Outcome.FAILED,):
            raise CommandError(line)
        if result.outcome == PriceCatalogFetch.Outcome.REFUSED_SHRINK:
            raise CommandError(line)
        catalog = result.catalog
        self.stdout.write(line)
        if catalog is not None:
            self.stdout.write(f"catalog in use: v{catalog.version} sha256:{catalog.sha256}")
