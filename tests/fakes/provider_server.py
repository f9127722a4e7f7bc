"""The fake OpenAI/Anthropic provider for tests (the server itself is ``byok.demo_provider``).

The same server backs ``make demo``; see that module for the wire formats and the ``mode``s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from byok.demo_provider import (
    ANTHROPIC_MODELS,
    ANTHROPIC_VALID_KEY,
    DEFAULT_VALID_KEY,
    MODES,
    OPENAI_MODELS,
    FakeProviderServer,
    RecordedRequest,
    unused_port,
)

__all__ = [
    "ANTHROPIC_MODELS",
    "ANTHROPIC_VALID_KEY",
    "DEFAULT_VALID_KEY",
    "MODES",
    "OPENAI_MODELS",
    "FakeProviderServer",
    "RecordedRequest",
    "fake_provider_server",
    "unused_port",
]


@pytest.fixture
def fake_provider_server() -> Iterator[FakeProviderServer]:
    """Pytest fixture: a started FakeProviderServer, stopped afterwards."""
    with FakeProviderServer() as server:
        yield server
