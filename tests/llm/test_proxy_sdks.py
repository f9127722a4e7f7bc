"""The proxy driven by the real ``openai`` and ``anthropic`` SDKs against the fake upstream:
every call is reserved before it is sent and committed from the provider's usage with each
provider's cache semantics, streaming and not; refusals come in the provider's error shape."""

from __future__ import annotations

import anthropic
import openai
import pytest

from enforcement.models import BudgetPeriod, LlmCall, Reservation
from tests.llm.conftest import PLATFORM_KEYS


def _openai(proxy, tenant, **kwargs):
    return openai.OpenAI(
        base_url=proxy.url + "/v1", api_key=tenant.plaintext, max_retries=0, **kwargs
    )


def _anthropic(proxy, tenant):
    return anthropic.Anthropic(base_url=proxy.url, api_key=tenant.plaintext, max_retries=0)


def _only_call() -> LlmCall:
    calls = list(LlmCall.objects.select_related("reservation"))
    assert len(calls) == 1, calls
    return calls[0]


def _period(tenant) -> BudgetPeriod:
    return BudgetPeriod.objects.get(budget=tenant.budget)


def test_openai_chat_is_reserved_then_committed_with_cached_tokens_inside_prompt(
    proxy, llm_tenant, fake_upstream
):
    client = _openai(proxy, llm_tenant)
    completion = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}], max_tokens=500
    )
    assert completion.choices[0].message.content == "Hello!"
    assert completion.usage.prompt_tokens == 1200
    # The provider got the platform key, never the Tollgate key.
    sent = fake_upstream.requests[-1]
    assert sent["headers"]["authorization"] == f"Bearer {PLATFORM_KEYS['openai']}"
    assert llm_tenant.plaintext not in str(sent["headers"])
    call = _only_call()
    # gpt-4o: 2.50 / 1.25 (cached) / 10.00 USD per million; 200 uncached + 1000 cached + 300 out
    assert call.cost_micros == 200 * 2_500_000 // 10**6 + 1000 * 1_250_000 // 10**6 + 3000
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (200, 1000, 300)
    assert call.reservation.state == Reservation.State.COMMITTED
    assert call.reservation.reported_micros == call.cost_micros == 4750
    assert call.actor == LlmCall.Actor.SYSTEM and not call.estimated
    assert call.catalog_version == 1
    period = _period(llm_tenant)
    assert (period.spent_micros, period.reserved_micros) == (4750, 0)


def test_openai_stream_injects_include_usage_and_hides_it_from_a_client_that_did_not_ask(
    proxy, llm_tenant, fake_upstream
):
    client = _openai(proxy, llm_tenant)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Say hello"}],
            max_tokens=500,
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello!"
    assert all(c.choices for c in chunks)  # the injected usage chunk was not passed on
    assert fake_upstream.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    assert _only_call().cost_micros == 4750


def test_openai_stream_passes_usage_to_a_client_that_asked(proxy, llm_tenant):
    client = _openai(proxy, llm_tenant)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Say hello"}],
            max_tokens=500,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage.total_tokens == 1500 and chunks[-1].choices == []
    assert _only_call().cost_micros == 4750


def test_openai_embeddings(proxy, llm_tenant):
    result = _openai(proxy, llm_tenant).embeddings.create(
        model="text-embedding-3-small", input="hello"
    )
    assert result.data[0].embedding == [0.1, -0.2, 0.3]
    call = _only_call()
    assert call.input_tokens == 8 and call.cost_micros == 1  # 8 x 0.02 USD/M, rounded up


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_anthropic_messages_input_excludes_cache_reads_and_writes(proxy, llm_tenant, stream):
    client = _anthropic(proxy, llm_tenant)
    kwargs = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "Say hello"}],
    }
    if stream:
        with client.messages.stream(**kwargs) as events:
            text = "".join(events.text_stream)
            final = events.get_final_message()
        assert final.usage.output_tokens == 300
    else:
        message = client.messages.create(**kwargs)
        text = message.content[0].text
    assert text == "Hello!"
    call = _only_call()
    # claude-sonnet-4-5: 3.00 in, 3.75 cache write, 0.30 cache read, 15.00 out per million
    expected = (200 * 3_000_000 + 100 * 3_750_000 + 1000 * 300_000 + 300 * 15_000_000) // 10**6
    assert call.cost_micros == expected == 5775
    assert (call.input_tokens, call.cache_creation_tokens, call.cache_read_tokens) == (
        200,
        100,
        1000,
    )


def test_anthropic_sdk_sends_the_key_as_x_api_key(proxy, llm_tenant, fake_upstream):
    _anthropic(proxy, llm_tenant).messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    headers = fake_upstream.requests[-1]["headers"]
    assert headers["x-api-key"] == PLATFORM_KEYS["anthropic"]
    assert headers["anthropic-version"]


def test_a_budget_deny_is_402_in_openais_shape(proxy, llm_tenant, fake_upstream):
    # o1: 15 USD/M in, 60 USD/M out. 700k prompt bytes bound 700k tokens: 10.5 USD > 10 USD.
    with pytest.raises(openai.APIStatusError) as caught:
        _openai(proxy, llm_tenant).chat.completions.create(
            model="o1", messages=[{"role": "user", "content": "x" * 700_000}], max_tokens=1000
        )
    error = caught.value
    assert error.status_code == 402
    assert error.body["code"] == "BUDGET_EXCEEDED" and error.body["type"] == "insufficient_quota"
    assert error.body["remediation"] and error.body["decision_id"].startswith("dec_")
    assert _period(llm_tenant).reserved_micros == 0
    assert fake_upstream.requests == []  # the denied call never left


def test_a_budget_deny_is_402_in_anthropics_shape(proxy, llm_tenant, fake_upstream):
    # claude-sonnet-4-5: a prompt byte may be a cache write (3.75 USD/M): 3M bytes > 10 USD.
    with pytest.raises(anthropic.APIStatusError) as caught:
        _anthropic(proxy, llm_tenant).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=16_000,
            messages=[{"role": "user", "content": "x" * 3_000_000}],
        )
    assert caught.value.status_code == 402
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "billing_error"
    assert caught.value.body["error"]["code"] == "BUDGET_EXCEEDED"
    assert fake_upstream.requests == []


def test_an_unknown_model_and_a_bad_key_answer_in_the_providers_shape(proxy, llm_tenant):
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        _openai(proxy, llm_tenant).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["code"] == "LLM_MODEL_UNKNOWN"
    bad = anthropic.Anthropic(base_url=proxy.url, api_key="tg_nope_nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(
            model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_an_upstream_error_is_passed_through_and_commits_nothing(proxy, llm_tenant, fake_upstream):
    fake_upstream.fail_status = 529
    with pytest.raises(anthropic.APIStatusError) as caught:
        _anthropic(proxy, llm_tenant).messages.create(
            model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 529
    call = _only_call()
    assert call.cost_micros == 0 and not call.estimated and call.upstream_status == 529
    assert _period(llm_tenant).reserved_micros == 0


def test_a_replayed_idempotency_key_is_not_sent_twice(proxy, llm_tenant, fake_upstream):
    client = _openai(proxy, llm_tenant, default_headers={"Idempotency-Key": "agent-1-turn-1"})
    client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=5
    )
    with pytest.raises(openai.ConflictError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=5
        )
    assert caught.value.body["code"] == "RESERVATION_RESOLVED"
    assert len(fake_upstream.requests) == 1 and LlmCall.objects.count() == 1


def test_require_approval_is_402_with_the_approval_url_then_the_approved_call_goes(
    proxy, llm_tenant, fake_upstream
):
    from enforcement.models import ApprovalRequest
    from enforcement.services.approvals import approval_vote
    from tests import factories

    factories.require_approval_above(llm_tenant, "0.001")
    client = _openai(proxy, llm_tenant, default_headers={"Idempotency-Key": "needs-approval"})
    kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": 500}
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**kwargs)
    assert caught.value.status_code == 402
    assert caught.value.body["code"] == "APPROVAL_REQUIRED"
    assert caught.value.body["approval_url"]
    assert fake_upstream.requests == []
    approval = ApprovalRequest.objects.get()
    owner = factories.make_member(llm_tenant, "olga", "owner")
    approval_vote(
        approval_id=approval.pk, tenant_id=llm_tenant.pk, user=owner, vote="approve", comment="ok"
    )
    client.chat.completions.create(**kwargs)
    assert len(fake_upstream.requests) == 1
    assert _only_call().reservation.state == Reservation.State.COMMITTED
