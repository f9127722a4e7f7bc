"""The demo provider answers generation calls the way the real APIs do, so `make demo`'s LLM
proxy has something to forward to: the real openai and anthropic clients parse its JSON and
SSE, and the usage it reports follows the request (the usage chunk only when asked for)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from byok.demo_provider import ANTHROPIC_VALID_KEY, DEFAULT_VALID_KEY, FakeProviderServer

PROMPT = [{"role": "user", "content": "How much did the payments team spend this month?"}]


@pytest.fixture
def provider():
    with FakeProviderServer() as server:
        yield server


def test_openai_chat_json_stream_and_embeddings(provider):
    client = openai.OpenAI(base_url=provider.base_url + "/v1", api_key=DEFAULT_VALID_KEY)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert "demo provider" in reply.choices[0].message.content
    assert reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens > 5

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=PROMPT,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content
    assert chunks[-1].usage.total_tokens == reply.usage.total_tokens
    plain = list(client.chat.completions.create(model="gpt-4o", messages=PROMPT, stream=True))
    assert all(getattr(c, "usage", None) is None for c in plain)  # not asked for, not sent

    short = client.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=3)
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 3

    embedding = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(embedding.data[0].embedding) == 3 and embedding.usage.prompt_tokens >= 1


def test_anthropic_messages_json_and_stream(provider):
    client = anthropic.Anthropic(base_url=provider.base_url, api_key=ANTHROPIC_VALID_KEY)
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=PROMPT, system="Be brief."
    )
    assert "demo provider" in message.content[0].text
    assert message.usage.input_tokens > 10 and message.stop_reason == "end_turn"
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=PROMPT) as s:
        final = s.get_final_message()
    assert final.content[0].text == message.content[0].text
    assert final.usage.output_tokens == message.usage.output_tokens


def test_generation_still_needs_a_valid_key_and_honours_the_failure_modes(provider):
    bad = openai.OpenAI(base_url=provider.base_url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o", messages=PROMPT)
    provider.mode = "overloaded"
    claude = anthropic.Anthropic(
        base_url=provider.base_url, api_key=ANTHROPIC_VALID_KEY, max_retries=0
    )
    with pytest.raises(anthropic.APIStatusError) as failed:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=PROMPT)
    assert failed.value.status_code == 529
