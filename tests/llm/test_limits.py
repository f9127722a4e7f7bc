"""Per-key, per-end-user and per-tenant requests and tokens per minute (the project's one
limiter, in Redis), request-shape caps, the actor recorded on each call, abuse signals."""

from __future__ import annotations

import openai
import pytest

from controlplane.core.errors import TollgateError
from enforcement.llm import limits
from enforcement.models import LlmCall
from tests import factories

pytestmark = pytest.mark.redis


def _client(proxy, key, **headers):
    return openai.OpenAI(
        base_url=proxy.url + "/v1", api_key=key, max_retries=0, default_headers=headers or None
    )


def _chat(client, **kwargs):
    return client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=10, **kwargs
    )


def test_requests_per_minute_per_end_user_answer_429_in_openais_shape(
    proxy, llm_tenant, settings, fake_upstream
):
    settings.LLM_REQUESTS_PER_MINUTE_USER = 2
    fake_upstream.openai_usage = {"prompt_tokens": 5, "completion_tokens": 5}
    client = _client(proxy, llm_tenant.plaintext)
    _chat(client, user="alice")
    _chat(client, user="alice")
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(client, user="alice")
    assert caught.value.body["code"] == "RATE_LIMITED"
    assert caught.value.body["scope"] == "user"
    assert int(caught.value.response.headers["retry-after"]) >= 1
    _chat(client, user="bob")  # another end user has their own allowance
    assert set(LlmCall.objects.values_list("end_user", flat=True)) == {"alice", "bob"}


def test_tokens_per_minute_per_key_count_the_reserved_bound(
    proxy, llm_tenant, settings, fake_upstream
):
    settings.LLM_TOKENS_PER_MINUTE_KEY = 150
    fake_upstream.openai_usage = {"prompt_tokens": 5, "completion_tokens": 5}
    client = _client(proxy, llm_tenant.plaintext)
    _chat(client)  # 40 tokens of prompt bound + 10 of output; the next needs 130 more
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=90
        )
    assert caught.value.body["code"] == "LLM_TOKENS_RATE_LIMITED"
    assert caught.value.body["scope"] == "key"
    with pytest.raises(openai.APIStatusError) as caught:  # alone above the limit: never fits
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=200
        )
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "LLM_REQUEST_TOO_LARGE"


@pytest.mark.django_db
def test_tenant_limits_are_shared_by_its_keys(llm_tenant, settings):
    settings.LLM_REQUESTS_PER_MINUTE_TENANT = 1
    other, _ = factories.make_api_key(llm_tenant)
    limits.check_rates(tenant_id=llm_tenant.pk, key_id=llm_tenant.key.pk, end_user="", tokens=1)
    with pytest.raises(TollgateError) as caught:
        limits.check_rates(tenant_id=llm_tenant.pk, key_id=other.pk, end_user="", tokens=1)
    assert caught.value.status_code == 429 and caught.value.extra["scope"] == "tenant"


def test_the_prompt_size_cap(proxy, llm_tenant, settings, fake_upstream):
    settings.LLM_MAX_PROMPT_BYTES = 1000
    with pytest.raises(openai.APIStatusError) as caught:
        _client(proxy, llm_tenant.plaintext).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x" * 2000}], max_tokens=5
        )
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "LLM_REQUEST_TOO_LARGE"
    with pytest.raises(openai.BadRequestError) as caught:  # above gpt-4o's 16384 output
        _chat(_client(proxy, llm_tenant.plaintext), max_completion_tokens=20_000)
    assert caught.value.body["code"] == "LLM_REQUEST_TOO_LARGE"
    assert fake_upstream.requests == []


def test_user_and_system_actors_are_recorded(proxy, llm_tenant):
    person = factories.make_member(llm_tenant, "dana", "member")
    project = llm_tenant.key.project
    _, personal = factories.make_api_key(
        llm_tenant, user=person, project=project, environment="dev"
    )
    _chat(_client(proxy, personal))
    _chat(_client(proxy, llm_tenant.plaintext), user="end-user-7")
    calls = {c.api_key.user_id is not None: c for c in LlmCall.objects.select_related("api_key")}
    assert calls[True].actor == "user" and calls[False].actor == "system"
    assert calls[False].end_user == "end-user-7"


@pytest.mark.django_db
def test_repeated_denials_from_one_key_raise_an_abuse_signal(llm_tenant, settings, caplog):
    from enforcement.metrics import LLM_ABUSE_SIGNALS

    settings.LLM_ABUSE_DENIALS_PER_MINUTE = 3
    before = LLM_ABUSE_SIGNALS.labels(scope="key")._value.get()
    for _ in range(5):
        limits.note_denial(
            reason="BUDGET_EXCEEDED", tenant_id=llm_tenant.pk, key_id=llm_tenant.key.pk, client=""
        )
    assert LLM_ABUSE_SIGNALS.labels(scope="key")._value.get() - before == 2
    assert "llm_abuse_signal" in caplog.text


def test_the_policys_llm_caps_bound_prompts_and_max_tokens_per_model(
    proxy, llm_tenant, fake_upstream, api_client
):
    from enforcement.models import Reservation
    from tests.enforcement.helpers import policy_document, publish_policy

    publish_policy(
        llm_tenant,
        policy_document(llm={"max_prompt_bytes": 200, "max_tokens": {"gpt-4o": 50, "*": 30}}),
    )
    chat = _client(proxy, llm_tenant.plaintext)
    with pytest.raises(openai.APIStatusError) as too_many:
        chat.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=51
        )
    assert too_many.value.status_code == 413
    assert too_many.value.body["code"] == "LLM_REQUEST_TOO_LARGE"
    assert "policy's cap" in too_many.value.body["message"]
    with pytest.raises(openai.APIStatusError) as too_long:
        chat.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "y" * 300}], max_tokens=5
        )
    assert too_long.value.status_code == 413
    assert "llm.max_prompt_bytes" in too_long.value.body["message"]
    assert fake_upstream.requests == []  # nothing was sent for either

    # Within the caps the call goes through; a reservation without max_tokens is bounded by
    # the '*' cap, not the model's maximum output.
    _chat(chat)
    response = api_client.post(
        "/api/v1/llm/reservations",
        {"model": "gpt-4o-mini", "input_tokens": 10, "project": "payments", "environment": "dev"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {llm_tenant.plaintext}",
        HTTP_IDEMPOTENCY_KEY="caps-1",
    )
    assert response.status_code == 201, response.content
    assert response.json()["llm"]["max_output_tokens"] == 30
    assert Reservation.objects.filter(pk=response.json()["reservation"]["id"]).exists()
