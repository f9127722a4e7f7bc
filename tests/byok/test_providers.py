"""Provider adapters against a real local HTTP server speaking both providers' wire formats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from byok.providers import (
    PROVIDER_FAULT_STATUSES,
    ProbeResult,
    ProbeStatus,
    ProviderAdapter,
    UnknownProvider,
    get_adapter,
    provider_names,
    register,
)
from byok.providers import registry as registry_module
from byok.providers.anthropic import AnthropicAdapter
from byok.providers.base import classify_response, parse_retry_after
from byok.providers.openai import OpenAIAdapter
from tests.fakes.provider_server import (
    ANTHROPIC_VALID_KEY,
    DEFAULT_VALID_KEY,
    FakeProviderServer,
    unused_port,
)

TIMEOUT = 2.0
HANG_TIMEOUT = 0.3
PROVIDERS = ("openai", "anthropic")
VALID_KEYS = {"openai": DEFAULT_VALID_KEY, "anthropic": ANTHROPIC_VALID_KEY}


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def server(_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


def probe(server: FakeProviderServer, provider: str, key: str | None = None, **kw) -> ProbeResult:
    kw.setdefault("timeout", TIMEOUT)
    return get_adapter(provider).probe(key or VALID_KEYS[provider], base_url=server.base_url, **kw)


def assert_no_key(result: ProbeResult, key: str) -> None:
    for text in (result.detail, repr(result), str(result)):
        assert key not in text


# --- registry ---------------------------------------------------------------------------------


def test_registry_lists_builtin_providers_sorted() -> None:
    assert provider_names() == ("anthropic", "openai")
    assert isinstance(get_adapter("openai"), OpenAIAdapter)
    assert isinstance(get_adapter("anthropic"), AnthropicAdapter)


@pytest.mark.parametrize("name", ["gpt-4o", "claude-3", "sk-ant-xyz", "OpenAI", "", None])
def test_unknown_provider_is_a_key_error_and_never_inferred(name: object) -> None:
    with pytest.raises(UnknownProvider) as exc_info:
        get_adapter(name)  # type: ignore[arg-type]
    assert isinstance(exc_info.value, KeyError)
    assert "unknown provider" in str(exc_info.value)


def test_register_adds_a_provider_with_one_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))

    @register
    class ExampleAdapter(ProviderAdapter):
        name = "example"
        display_name = "Example"
        default_base_url = "https://example.invalid"

        def auth_headers(self, api_key: str) -> dict[str, str]:
            return {"authorization": f"Bearer {api_key}"}

    assert "example" in provider_names()
    assert isinstance(get_adapter("example"), ExampleAdapter)

    class Impostor(ExampleAdapter):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)


def test_register_rejects_bad_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))

    class Upper(OpenAIAdapter):
        name = "OpenAI2"

    with pytest.raises(ValueError, match="lowercase"):
        register(Upper)


# --- classification against the fake server --------------------------------------------------


def test_valid_key(server: FakeProviderServer, provider: str) -> None:
    result = probe(server, provider)
    assert result.status is ProbeStatus.valid
    assert result.is_valid
    assert result.http_status == 200
    assert result.retry_after_seconds is None
    assert result.latency_ms > 0
    assert_no_key(result, VALID_KEYS[provider])


def test_openai_sends_bearer_only(server: FakeProviderServer) -> None:
    probe(server, "openai")
    (request,) = server.requests
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["authorization"] == f"Bearer {DEFAULT_VALID_KEY}"
    assert "x-api-key" not in request.headers
    assert "anthropic-version" not in request.headers


def test_anthropic_sends_api_key_and_version_only(server: FakeProviderServer) -> None:
    probe(server, "anthropic")
    (request,) = server.requests
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["x-api-key"] == ANTHROPIC_VALID_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers


def test_unknown_key_is_invalid_even_in_ok_mode(server: FakeProviderServer, provider: str) -> None:
    key = "sk-wrong-key-0123456789abcdefXYZW"
    result = probe(server, provider, key)
    assert result.status is ProbeStatus.invalid
    assert result.http_status == 401
    assert_no_key(result, key)
    # OpenAI echoes a masked key in its error message; we must not surface even that.
    assert "XYZW" not in result.detail


@pytest.mark.parametrize(("mode", "http_status"), [("unauthorized", 401), ("forbidden", 403)])
def test_rejected_key_is_invalid(
    server: FakeProviderServer, provider: str, mode: str, http_status: int
) -> None:
    server.mode = mode
    result = probe(server, provider)
    assert result.status is ProbeStatus.invalid
    assert result.http_status == http_status
    assert str(http_status) in result.detail
    assert_no_key(result, VALID_KEYS[provider])


def test_rate_limited_with_retry_after_seconds(server: FakeProviderServer, provider: str) -> None:
    server.mode = "rate_limited"
    server.retry_after = 17
    result = probe(server, provider)
    assert result.status is ProbeStatus.rate_limited
    assert result.http_status == 429
    assert result.retry_after_seconds == 17
    assert_no_key(result, VALID_KEYS[provider])


def test_rate_limited_with_retry_after_http_date(server: FakeProviderServer, provider: str) -> None:
    server.mode = "rate_limited"
    server.retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    result = probe(server, provider)
    assert result.status is ProbeStatus.rate_limited
    assert result.retry_after_seconds is not None
    assert 115 <= result.retry_after_seconds <= 121


def test_rate_limited_without_retry_after(server: FakeProviderServer, provider: str) -> None:
    server.mode = "rate_limited"
    result = probe(server, provider)
    assert result.status is ProbeStatus.rate_limited
    assert result.retry_after_seconds is None


@pytest.mark.parametrize(
    ("mode", "http_status"), [("server_error", 500), ("unavailable", 503), ("overloaded", 529)]
)
def test_server_failures_are_provider_errors(
    server: FakeProviderServer, provider: str, mode: str, http_status: int
) -> None:
    server.mode = mode
    result = probe(server, provider)
    assert result.status is ProbeStatus.provider_error
    assert result.status in PROVIDER_FAULT_STATUSES
    assert result.http_status == http_status
    assert str(http_status) in result.detail
    assert_no_key(result, VALID_KEYS[provider])


def test_anthropic_overloaded_detail_names_error_type(server: FakeProviderServer) -> None:
    server.mode = "overloaded"
    result = probe(server, "anthropic")
    assert "overloaded_error" in result.detail


def test_hang_times_out_quickly(server: FakeProviderServer, provider: str) -> None:
    server.mode = "hang"
    started = time.monotonic()
    result = probe(server, provider, timeout=HANG_TIMEOUT)
    elapsed = time.monotonic() - started
    assert result.status is ProbeStatus.timeout
    assert result.http_status is None
    assert elapsed < 2.0
    assert_no_key(result, VALID_KEYS[provider])


def test_refused_port_is_unreachable(provider: str) -> None:
    key = VALID_KEYS[provider]
    result = get_adapter(provider).probe(
        key, base_url=f"http://127.0.0.1:{unused_port()}", timeout=TIMEOUT
    )
    assert result.status is ProbeStatus.unreachable
    assert result.http_status is None
    assert result.status in PROVIDER_FAULT_STATUSES
    assert_no_key(result, key)


def test_unverifiable_provider_makes_no_network_call() -> None:
    calls: list[httpx.Request] = []

    class NoProbe(ProviderAdapter):
        name = "noprobe"
        display_name = "No Probe"
        default_base_url = "https://noprobe.invalid"
        supports_probe = False

        def auth_headers(self, api_key: str) -> dict[str, str]:
            return {"authorization": f"Bearer {api_key}"}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    result = NoProbe().probe(
        "sk-anything-123456", timeout=TIMEOUT, transport=httpx.MockTransport(handler)
    )
    assert result.status is ProbeStatus.unverifiable
    assert result.http_status is None
    assert calls == []


# --- injected transport: odd statuses and leak-proofing ---------------------------------------


def _mock(handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


@pytest.mark.parametrize("status", [302, 400, 404, 418, 422])
def test_other_statuses_are_provider_errors_with_status(provider: str, status: int) -> None:
    result = get_adapter(provider).probe(
        "sk-key-0123456789abcdef",
        timeout=TIMEOUT,
        transport=_mock(lambda request: httpx.Response(status, json={"error": {"type": "x"}})),
    )
    assert result.status is ProbeStatus.provider_error
    assert result.http_status == status
    assert str(status) in result.detail


def test_default_base_url_is_the_public_api(provider: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": []})

    get_adapter(provider).probe("sk-key-0123456789", timeout=TIMEOUT, transport=_mock(handler))
    expected = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
    assert str(seen[0].url) == f"{expected[provider]}/v1/models"


@pytest.mark.parametrize(
    ("exc_cls", "status"),
    [
        (httpx.ConnectError, ProbeStatus.unreachable),
        (httpx.RemoteProtocolError, ProbeStatus.unreachable),
        (httpx.ReadError, ProbeStatus.unreachable),
        (httpx.ConnectTimeout, ProbeStatus.timeout),
        (httpx.ReadTimeout, ProbeStatus.timeout),
        (httpx.PoolTimeout, ProbeStatus.timeout),
    ],
)
def test_transport_errors_are_classified_and_scrubbed(
    provider: str, exc_cls: type[httpx.TransportError], status: ProbeStatus
) -> None:
    key = "sk-secret-LEAKME-0123456789"

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_cls(f"boom while sending {key} to upstream", request=request)

    result = get_adapter(provider).probe(key, timeout=TIMEOUT, transport=_mock(handler))
    assert result.status is status
    assert_no_key(result, key)
    assert "[REDACTED]" in result.detail


def test_error_body_messages_are_not_echoed(provider: str) -> None:
    key = "sk-secret-ECHOED-0123456789"
    body = {"error": {"message": f"bad key {key}", "type": "authentication_error", "code": key}}
    result = get_adapter(provider).probe(
        key, timeout=TIMEOUT, transport=_mock(lambda request: httpx.Response(401, json=body))
    )
    assert result.status is ProbeStatus.invalid
    assert_no_key(result, key)


@pytest.mark.parametrize(
    "key", ["", "sk-with space", "sk-line\nbreak", "sk-\u00e9t\u00e9", "sk-\x00"]
)
def test_unsendable_keys_are_invalid_without_network_or_leak(provider: str, key: str) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    result = get_adapter(provider).probe(key, timeout=TIMEOUT, transport=_mock(handler))
    assert result.status is ProbeStatus.invalid
    assert calls == []
    if key:
        assert_no_key(result, key)


def test_adapter_repr_has_no_key(provider: str) -> None:
    adapter = get_adapter(provider)
    adapter.probe(
        "sk-repr-0123456789", timeout=TIMEOUT, transport=_mock(lambda r: httpx.Response(200))
    )
    assert "sk-repr" not in repr(adapter)
    assert "sk-repr" not in repr(vars(adapter))


# --- Retry-After parsing and classification unit checks ---------------------------------------


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0),
        ("30", 30),
        (" 5 ", 5),
        ("1.2", 2),
        ("-3", None),
        ("nan", None),
        ("soon", None),
        ("Wed, 01 Jan 2025 12:01:00 GMT", 60),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0),
        ("Wednesday, 01-Jan-25 12:00:30 GMT", 30),
        ("Wed Jan  1 12:00:10 2025", 10),
    ],
)
def test_parse_retry_after(value: str | None, expected: int | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, ProbeStatus.valid),
        (204, ProbeStatus.valid),
        (401, ProbeStatus.invalid),
        (403, ProbeStatus.invalid),
        (429, ProbeStatus.rate_limited),
        (500, ProbeStatus.provider_error),
        (502, ProbeStatus.provider_error),
        (529, ProbeStatus.provider_error),
        (404, ProbeStatus.provider_error),
        (301, ProbeStatus.provider_error),
    ],
)
def test_classify_response_table(status: int, expected: ProbeStatus) -> None:
    result = classify_response(status, {"Retry-After": "3"}, latency_ms=1.0)
    assert result.status is expected
    assert result.retry_after_seconds == (3 if status == 429 else None)


def test_invalid_and_rate_limited_are_not_provider_faults() -> None:
    assert ProbeStatus.invalid not in PROVIDER_FAULT_STATUSES
    assert ProbeStatus.rate_limited not in PROVIDER_FAULT_STATUSES
    assert ProbeStatus.unverifiable not in PROVIDER_FAULT_STATUSES


# --- the fake server itself speaks the real wire formats --------------------------------------


def test_fake_openai_list_models_shape(server: FakeProviderServer) -> None:
    response = httpx.get(
        f"{server.base_url}/v1/models", headers={"authorization": f"Bearer {DEFAULT_VALID_KEY}"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert {"id", "object", "created", "owned_by"} <= set(body["data"][0])
    assert body["data"][0]["object"] == "model"


def test_fake_anthropic_list_models_shape(server: FakeProviderServer) -> None:
    response = httpx.get(
        f"{server.base_url}/v1/models",
        headers={"x-api-key": ANTHROPIC_VALID_KEY, "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["has_more"] is False
    assert body["first_id"] == body["data"][0]["id"]
    assert body["last_id"] == body["data"][-1]["id"]
    assert {"type", "id", "display_name", "created_at"} <= set(body["data"][0])


def test_fake_requires_auth_and_anthropic_version(server: FakeProviderServer) -> None:
    url = f"{server.base_url}/v1/models"
    no_auth = httpx.get(url)
    assert no_auth.status_code == 401
    assert no_auth.json()["error"]["type"] == "invalid_request_error"

    no_version = httpx.get(url, headers={"x-api-key": ANTHROPIC_VALID_KEY})
    assert no_version.status_code == 400
    assert no_version.json()["type"] == "error"
    assert no_version.json()["error"]["type"] == "invalid_request_error"

    no_key = httpx.get(url, headers={"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error"


def test_fake_error_shapes_and_retry_after(server: FakeProviderServer) -> None:
    url = f"{server.base_url}/v1/models"
    server.mode = "rate_limited"
    server.retry_after = 9
    openai = httpx.get(url, headers={"authorization": f"Bearer {DEFAULT_VALID_KEY}"})
    assert openai.status_code == 429
    assert openai.headers["retry-after"] == "9"
    assert set(openai.json()["error"]) == {"message", "type", "param", "code"}
    anthropic = httpx.get(
        url, headers={"x-api-key": ANTHROPIC_VALID_KEY, "anthropic-version": "2023-06-01"}
    )
    assert anthropic.status_code == 429
    assert anthropic.json()["error"]["type"] == "rate_limit_error"

    server.mode = "overloaded"
    overloaded = httpx.get(
        url, headers={"x-api-key": ANTHROPIC_VALID_KEY, "anthropic-version": "2023-06-01"}
    )
    assert overloaded.status_code == 529
    assert overloaded.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_fake0001",
    }


def test_fake_rejects_unknown_modes() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        FakeProviderServer(mode="sometimes")


def test_fake_stop_releases_hung_requests() -> None:
    fake = FakeProviderServer().start()
    fake.mode = "hang"
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{fake.base_url}/v1/models", timeout=0.2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2.0
