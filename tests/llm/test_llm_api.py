"""``POST /api/v1/llm/reservations`` + commit with the provider's usage, and
``GET /api/v1/prices/{model}``."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from billing.services.plans import tenant_plan_set
from billing.services.prices import price_catalog_import
from enforcement.models import BudgetPeriod, LlmCall
from tests.api_contracts import assert_problem
from tests.llm.conftest import PRICES

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(llm_tenant) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {llm_tenant.plaintext}")
    return client


def _reserve(client, **body):
    return client.post(
        "/api/v1/llm/reservations",
        {"model": "gpt-4o", **body},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


def test_reserve_from_a_token_count_and_commit_with_openai_usage(client, llm_tenant):
    response = _reserve(client, input_tokens=1000, max_output_tokens=500)
    assert response.status_code == 201, response.content
    body = response.json()
    # 1000 x 2.50 + 500 x 10.00 USD per million = 0.0075 USD
    assert body["outcome"] == "ALLOW" and body["reservation"]["amount_usd"] == "0.0075"
    assert body["llm"]["catalog_version"] == 1 and len(body["llm"]["catalog_sha256"]) == 64
    committed = client.post(
        f"/api/v1/reservations/{body['reservation']['id']}/commit",
        {
            "usage": {
                "prompt_tokens": 900,
                "completion_tokens": 100,
                "prompt_tokens_details": {"cached_tokens": 800},
            }
        },
        format="json",
    )
    assert committed.status_code == 200, committed.content
    # 100 x 2.50 + 800 x 1.25 + 100 x 10.00 = 2250 micro-dollars
    assert committed.json()["reported_cost_usd"] == "0.00225"
    call = LlmCall.objects.get()
    assert call.surface == "api" and call.cost_micros == 2250 and call.cache_read_tokens == 800
    period = BudgetPeriod.objects.get(budget=llm_tenant.budget)
    assert (period.spent_micros, period.reserved_micros) == (2250, 0)


def test_messages_bound_input_by_utf8_bytes_and_output_defaults_to_the_model_maximum(client):
    text = "héllo wörld"  # 13 UTF-8 bytes
    body = _reserve(
        client,
        format="anthropic",
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": text}],
    ).json()
    assert body["llm"]["max_output_tokens"] == 64000
    assert body["llm"]["input_tokens"] >= len(text.encode()) > len(text)


def test_a_commit_prices_with_the_frozen_prices_after_the_catalog_changed(client):
    reservation = _reserve(client, input_tokens=10, max_output_tokens=10).json()["reservation"]
    cheaper = PRICES.read_text().replace("2.5e-06", "1e-09")
    result = price_catalog_import(text=cheaper, source="test")
    assert result.catalog.version == 2
    committed = client.post(
        f"/api/v1/reservations/{reservation['id']}/commit",
        {"usage": {"prompt_tokens": 1000, "completion_tokens": 0}},
        format="json",
    )
    assert committed.json()["reported_cost_usd"] == "0.0025"  # v1's 2.50 USD/M, not v2's
    assert LlmCall.objects.get().catalog_version == 1


def test_anthropic_usage_adds_cache_reads_and_writes_to_input(client):
    reservation = _reserve(
        client,
        format="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=2000,
        max_output_tokens=100,
    ).json()["reservation"]
    committed = client.post(
        f"/api/v1/reservations/{reservation['id']}/commit",
        {
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 100,
                "output_tokens": 20,
            }
        },
        format="json",
    )
    # 10 x 3 + 1000 x 0.30 + 100 x 3.75 + 20 x 15 = 1005 micro-dollars
    assert committed.json()["reported_cost_usd"] == "0.001005"


def test_usage_that_is_not_the_providers_is_refused_and_changes_nothing(client):
    reservation = _reserve(client, input_tokens=10, max_output_tokens=10).json()["reservation"]
    url = f"/api/v1/reservations/{reservation['id']}/commit"
    assert_problem(
        client.post(url, {"usage": {"prompt_tokens": -1}}, format="json"), 400, "LLM_USAGE_INVALID"
    )
    assert_problem(client.post(url, {}, format="json"), 400, "LLM_USAGE_INVALID")
    assert not LlmCall.objects.exists()


def test_a_gate_reservation_still_needs_actual_cost(client, llm_tenant):
    from tests.enforcement.helpers import gate_service

    body = gate_service(llm_tenant, micros=1_000_000, project="payments", environment="dev")
    response = client.post(
        f"/api/v1/reservations/{body['reservation']['id']}/commit",
        {"usage": {"x": 1}},
        format="json",
    )
    assert_problem(response, 400, "VALIDATION_FAILED")


def test_unknown_model_and_max_output_above_the_model(client):
    assert_problem(_reserve(client, model="nope", input_tokens=1), 422, "LLM_MODEL_UNKNOWN")
    assert_problem(
        _reserve(client, input_tokens=1, max_output_tokens=16385), 400, "LLM_REQUEST_TOO_LARGE"
    )
    assert_problem(_reserve(client), 400, "VALIDATION_FAILED")  # neither tokens nor messages


def test_the_price_of_a_model(client):
    body = client.get("/api/v1/prices/gpt-4o").json()
    assert body["input_cost_per_token_usd"] == "0.0000025"
    assert body["cache_read_cost_per_token_usd"] == "0.00000125"
    assert body["catalog_version"] == 1 and body["provider"] == "openai"
    tiered = client.get("/api/v1/prices/anthropic.claude-sonnet-4-20250514-v1:0").json()
    assert tiered["tiers"][0]["above_input_tokens"] == 200000
    assert_problem(client.get("/api/v1/prices/nope"), 422, "LLM_MODEL_UNKNOWN")


def test_the_gateway_needs_its_entitlement(client, llm_tenant):
    tenant_plan_set(tenant=llm_tenant, plan="growth")
    response = _reserve(client, input_tokens=1)
    assert assert_problem(response, 403, "FEATURE_NOT_ENTITLED")["feature"] == "llm_gateway"
