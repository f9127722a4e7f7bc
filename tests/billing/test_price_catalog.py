"""The model price catalog: LiteLLM-format import from a file or URL, integer prices, shrink
guard, last-good fallback, scheduled refresh, and the pure cost arithmetic."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import ModelPrice, PriceCatalog, PriceCatalogFetch
from billing.pricing.cost import (
    Usage,
    UsageError,
    ceiling_micros,
    cost_micros,
    usage_from_anthropic,
    usage_from_openai,
)
from billing.pricing.parse import PriceDocumentError, parse_document, to_pusd
from billing.services.prices import price_catalog_import, price_catalog_refresh
from billing.tasks import price_catalog_refresh_task

PRICES = Path(__file__).resolve().parents[1] / "fixtures" / "llm" / "litellm_prices_subset.json"
# The 4,553-model LiteLLM file of the project's shared fixtures (beside the checkout in CI, two
# levels up from a git worktree).
_ROOT = Path(__file__).resolve().parents[2]
FULL = next(
    (
        p
        for p in (
            _ROOT.parent / "shared" / "fixtures" / "litellm_model_prices.json",
            _ROOT.parent.parent / "shared" / "fixtures" / "litellm_model_prices.json",
        )
        if p.exists()
    ),
    _ROOT.parent / "shared" / "fixtures" / "litellm_model_prices.json",
)


def test_prices_are_integer_pico_dollars_rounded_up_from_the_json_text():
    assert to_pusd(Decimal("2.5e-06")) == 2_500_000
    assert to_pusd(Decimal("1.875e-11")) == 19  # 18.75 pUSD rounds up, never down
    assert to_pusd(Decimal("-1e-06")) is None and to_pusd(True) is None
    entries = {e.model: e for e in parse_document(PRICES.read_bytes())}
    assert "sample_spec" not in entries
    tiered = entries["anthropic.claude-sonnet-4-20250514-v1:0"]
    assert tiered.tiers == [
        {
            "above": 200000,
            "input": 6000000,
            "output": 22500000,
            "cache_creation": 7500000,
            "cache_read": 600000,
        }
    ]


def test_documents_that_are_not_price_maps_are_refused():
    for text in (b"[]", b"not json", b'{"m": {"mode": "chat"}}'):
        with pytest.raises(PriceDocumentError):
            parse_document(text)


@pytest.mark.skipif(not FULL.exists(), reason="the shared LiteLLM fixture is not beside the repo")
def test_the_whole_litellm_file_parses():
    entries = parse_document(FULL.read_bytes())
    assert len(json.loads(FULL.read_text())) == 4553
    assert len(entries) > 3000 and all(e.input_pusd >= 0 and e.output_pusd >= 0 for e in entries)


def test_cache_semantics_of_each_provider():
    openai = usage_from_openai(
        {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1000},
        }
    )
    assert openai == Usage(input=200, cache_read=1000, output=300)
    anthropic = usage_from_anthropic(
        {
            "input_tokens": 200,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 100,
            "output_tokens": 3,
        }
    )
    assert anthropic == Usage(input=200, cache_read=1000, cache_creation=100, output=3)
    with pytest.raises(UsageError):
        usage_from_openai({"completion_tokens": 1})
    with pytest.raises(UsageError):
        usage_from_anthropic({"input_tokens": 1.5})


def test_cost_with_tiers_reasoning_and_the_ceiling():
    prices = {
        "input": 3_000_000,
        "output": 15_000_000,
        "cache_read": 300_000,
        "cache_creation": 3_750_000,
        "reasoning": None,
        "tiers": [{"above": 1000, "input": 6_000_000, "output": 22_500_000}],
    }
    assert cost_micros(prices, Usage(input=1000, output=1)) == 3000 + 15  # not above the tier
    assert cost_micros(prices, Usage(input=1001, output=0)) == 6006  # the tier's price
    assert cost_micros({**prices, "input": 1}, Usage(input=1)) == 1  # 1e-12 USD rounds up
    reasoning = {**prices, "tiers": [], "reasoning": 20_000_000}
    assert cost_micros(reasoning, Usage(output=10, reasoning=4)) == 90 + 80
    # Every input token at the cache-write price, the long-context tier included.
    assert ceiling_micros(prices, input_tokens=2000, output_tokens=10) == 2000 * 6 + 225


@pytest.mark.django_db
def test_import_then_unchanged_then_a_new_version():
    first = price_catalog_import(text=PRICES.read_bytes(), source="file")
    assert first.outcome == "imported" and first.catalog.version == 1
    assert ModelPrice.objects.get(catalog=first.catalog, model="gpt-4o").input_pusd == 2_500_000
    again = price_catalog_import(text=PRICES.read_bytes(), source="file")
    assert again.outcome == "unchanged" and PriceCatalog.objects.count() == 1
    changed = price_catalog_import(
        text=PRICES.read_text().replace("2.5e-06", "3e-06"), source="file"
    )
    assert changed.outcome == "imported" and changed.catalog.version == 2
    assert changed.catalog.sha256 != first.catalog.sha256
    # Old versions stay: reservations froze their prices.
    assert ModelPrice.objects.filter(model="gpt-4o").count() == 2


@pytest.mark.django_db
def test_the_shrink_guard_keeps_the_last_good_catalog_unless_forced():
    good = price_catalog_import(text=PRICES.read_bytes(), source="file").catalog
    shrunk = {k: v for k, v in json.loads(PRICES.read_text()).items() if k in ("gpt-4o", "o1")}
    refused = price_catalog_import(text=json.dumps(shrunk), source="file")
    assert refused.outcome == "refused_shrink" and refused.catalog == good
    assert "kept v1" in refused.detail
    forced = price_catalog_import(text=json.dumps(shrunk), source="file", force=True)
    assert (
        forced.outcome == "imported" and forced.catalog.forced and forced.catalog.model_count == 2
    )


class _Flaky(BaseHTTPRequestHandler):
    failures_left = 0
    body = b""
    calls = 0

    def do_GET(self):
        type(self).calls += 1
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args):
        pass


@pytest.fixture
def price_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    _Flaky.body, _Flaky.failures_left, _Flaky.calls = PRICES.read_bytes(), 0, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prices.json"
    server.shutdown()


@pytest.mark.django_db
def test_a_url_refresh_retries_and_a_failed_one_keeps_the_last_good(price_server, settings):
    settings.PRICE_CATALOG_SOURCE = price_server
    settings.PRICE_CATALOG_RETRIES = 2
    settings.PRICE_CATALOG_RETRY_BACKOFF_SECONDS = 0
    _Flaky.failures_left = 2
    assert price_catalog_refresh_task() == "imported"  # the beat task: third try succeeds
    assert _Flaky.calls == 3
    assert PriceCatalogFetch.objects.get(outcome="imported").attempts == 3
    _Flaky.failures_left = 10
    result = price_catalog_refresh()
    assert result.outcome == "failed" and "HTTP 503" in result.detail
    assert result.catalog.version == 1  # last good stays in use
    assert settings.CELERY_BEAT_SCHEDULE["billing-price-catalog-refresh"]["task"] == (
        "billing.price_catalog_refresh_task"
    )


@pytest.mark.django_db
def test_the_import_command(tmp_path):
    call_command("import_prices", str(PRICES))
    assert PriceCatalog.objects.get().model_count == 7
    shrunk = tmp_path / "shrunk.json"
    shrunk.write_text(json.dumps({"gpt-4o": json.loads(PRICES.read_text())["gpt-4o"]}))
    with pytest.raises(CommandError, match="refused_shrink"):
        call_command("import_prices", str(shrunk))
    with pytest.raises(CommandError, match="failed"):
        call_command("import_prices", str(tmp_path / "missing.json"))
