"""The SDK's OpenAI and Anthropic wrappers: the real ``openai`` and ``anthropic`` clients talk
to the local fake upstream (their JSON and SSE), the wrapper reserves and commits through a
real Tollgate (live server, PostgreSQL, the LiteLLM-format price catalog)."""

from __future__ import annotations

import anthropic
import openai
import pytest
import tollgate

from enforcement.models import Reservation

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = [{"role": "user", "content": "Summarise the quarter in one line."}]


@pytest.fixture
def tg(live_server, llm_tenant, gateway_settings):
    with tollgate.Tollgate(live_server.url, llm_tenant.plaintext, max_retries=0) as client:
        yield client


@pytest.fixture(autouse=True)
def small_usage(fake_upstream):
    """What the provider reports for the short prompt: within what the prompt and max_tokens
    bound (the fake's defaults describe a long cached prompt)."""
    fake_upstream.openai_usage = {
        "prompt_tokens": 12,
        "completion_tokens": 40,
        "total_tokens": 52,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    fake_upstream.anthropic_usage = {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 40,
    }


@pytest.fixture
def oai(tg, fake_upstream):
    raw = openai.OpenAI(base_url=fake_upstream.url + "/v1", api_key="sk-direct", max_retries=0)
    return tg.wrap_openai(raw, project="payments", environment="dev")


@pytest.fixture
def claude(tg, fake_upstream):
    raw = anthropic.Anthropic(base_url=fake_upstream.url, api_key="sk-ant-direct", max_retries=0)
    return tg.wrap_anthropic(raw, project="payments", environment="dev")


def _only_reservation() -> Reservation:
    (reservation,) = Reservation.objects.all()
    return reservation


def test_openai_call_commits_the_usage_not_the_bound(oai, fake_upstream):
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=400)
    assert reply.usage.prompt_tokens == 12
    reservation = _only_reservation()
    assert reservation.state == "committed"
    assert 0 < reservation.reported_micros < reservation.amount_micros
    assert len(fake_upstream.requests) == 1


def test_openai_stream_gets_include_usage_and_commits_at_the_end(oai, fake_upstream):
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, max_tokens=400, stream=True
    )
    assert Reservation.objects.get().state == "pending"  # held while the stream runs
    chunks = list(stream)
    assert chunks[-1].usage is not None
    assert fake_upstream.requests[0]["body"]["stream_options"] == {"include_usage": True}
    reservation = _only_reservation()
    assert reservation.state == "committed"
    assert 0 < reservation.reported_micros < reservation.amount_micros


def test_openai_stream_left_early_commits_the_whole_estimate(oai):
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, max_tokens=400, stream=True
    )
    for _ in stream:
        break  # the caller stops reading: no usage ever arrives
    stream.close()
    reservation = _only_reservation()
    assert reservation.state == "committed"
    assert reservation.reported_micros == reservation.amount_micros


def test_provider_error_status_releases_the_hold(oai, fake_upstream):
    fake_upstream.fail_status = 400
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=400)
    assert _only_reservation().state == "released"


def test_provider_server_error_commits_the_estimate(oai, fake_upstream):
    fake_upstream.fail_status = 500
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=400)
    reservation = _only_reservation()
    assert reservation.state == "committed"
    assert reservation.reported_micros == reservation.amount_micros


def test_over_budget_call_never_reaches_the_provider(oai, fake_upstream, llm_tenant):
    from enforcement.services.budgets import budget_update

    budget_update(budget=llm_tenant.budget, limit_micros=1_000)  # 0.001 USD left to spend
    with pytest.raises(tollgate.BudgetDenied):
        # The bound: gpt-4o's 16,384 output tokens at its price, far above 0.001 USD.
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=16_384)
    assert fake_upstream.requests == []
    assert not Reservation.objects.exists()


def test_anthropic_call_and_stream_commit_their_usage(claude, fake_upstream):
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=400, messages=PROMPT, system="Be brief."
    )
    assert message.usage.output_tokens == 40
    events = list(
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=400, messages=PROMPT, stream=True
        )
    )
    assert events[-1].type == "message_stop"
    reservations = list(Reservation.objects.order_by("created_at"))
    assert [r.state for r in reservations] == ["committed", "committed"]
    # The same usage both times: the streamed commit adds message_start and message_delta up.
    assert reservations[0].reported_micros == reservations[1].reported_micros
    assert 0 < reservations[0].reported_micros < reservations[0].amount_micros
