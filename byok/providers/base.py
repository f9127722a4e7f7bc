"""Provider adapter contract and the one shared liveness-probe classifier.

Nothing here imports Django: adapters must be usable from workers, management commands and
tests without settings. The api key is only ever placed in request headers; it is never stored
on an adapter, never put in a ``ProbeResult`` and is scrubbed from any text we derive from a
transport exception.
"""

from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, ClassVar

import httpx

REDACTED = "[REDACTED]"
USER_AGENT = "tollgate-byok-probe/1"

# Visible ASCII only: anything else either breaks header encoding (and httpx/h11 then echo the
# header value, i.e. the key, in the exception) or is certainly not a real provider key.
_HEADER_SAFE_KEY = re.compile(r"[\x21-\x7e]+")
_SAFE_TOKEN = re.compile(r"[^A-Za-z0-9_.:-]")


class ProbeStatus(StrEnum):
    """Outcome of an authenticated liveness probe."""

    valid = "valid"
    invalid = "invalid"
    rate_limited = "rate_limited"
    provider_error = "provider_error"
    timeout = "timeout"
    unreachable = "unreachable"
    unverifiable = "unverifiable"


# Statuses that say the provider (not the key) is unhealthy; what a circuit breaker should count.
PROVIDER_FAULT_STATUSES = frozenset(
    {ProbeStatus.provider_error, ProbeStatus.timeout, ProbeStatus.unreachable}
)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Classified probe outcome; ``detail`` is a short human message that never holds the key."""

    status: ProbeStatus
    http_status: int | None
    retry_after_seconds: int | None
    detail: str
    latency_ms: float

    @property
    def is_valid(self) -> bool:
        """True when the provider accepted the credential."""
        return self.status is ProbeStatus.valid


def scrub(text: str, secret: str | None) -> str:
    """Return ``text`` with every occurrence of ``secret`` replaced by a redaction marker."""
    if secret:
        text = text.replace(secret, REDACTED)
    return text


def is_header_safe_key(api_key: str) -> bool:
    """True when the key is non-empty visible ASCII and can be sent in a header as-is."""
    return isinstance(api_key, str) and _HEADER_SAFE_KEY.fullmatch(api_key) is not None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> int | None:
    """Parse a Retry-After header (delta-seconds or HTTP-date) into whole seconds, or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
            return None
        return math.ceil(seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        # RFC 9110 HTTP-dates are always GMT; a naive parse result means "-0000"/GMT.
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0, math.ceil((when - now).total_seconds()))


def _error_code(body: Any) -> str | None:
    """Pull a short, safe error identifier (never the message) from an error JSON body."""
    if not isinstance(body, Mapping):
        return None
    err = body.get("error")
    if not isinstance(err, Mapping):
        return None
    # Provider messages may echo a partially masked key, so only identifiers are surfaced.
    for field in ("code", "type"):
        raw = err.get(field)
        if isinstance(raw, str) and raw:
            return _SAFE_TOKEN.sub("", raw)[:64] or None
    return None


def classify_response(
    status_code: int,
    headers: Mapping[str, str],
    *,
    latency_ms: float,
    body: Any = None,
) -> ProbeResult:
    """Map an HTTP response from a list-models probe onto a ``ProbeResult``."""
    code = _error_code(body)
    suffix = f" ({code})" if code else ""
    if 200 <= status_code < 300:
        return ProbeResult(ProbeStatus.valid, status_code, None, "credential accepted", latency_ms)
    if status_code in (401, 403):
        what = "rejected" if status_code == 401 else "not permitted"
        return ProbeResult(
            ProbeStatus.invalid,
            status_code,
            None,
            f"credential {what} by provider (HTTP {status_code}){suffix}",
            latency_ms,
        )
    if status_code == 429:
        retry_after = parse_retry_after(_header(headers, "retry-after"))
        return ProbeResult(
            ProbeStatus.rate_limited,
            status_code,
            retry_after,
            f"provider rate limited the probe (HTTP 429){suffix}",
            latency_ms,
        )
    if status_code >= 500:
        # 529 is Anthropic's "overloaded_error"; every 5xx is the provider's fault.
        return ProbeResult(
            ProbeStatus.provider_error,
            status_code,
            None,
            f"provider error (HTTP {status_code}){suffix}",
            latency_ms,
        )
    return ProbeResult(
        ProbeStatus.provider_error,
        status_code,
        None,
        f"unexpected provider response (HTTP {status_code}){suffix}",
        latency_ms,
    )


def classify_exception(exc: httpx.HTTPError, *, api_key: str, latency_ms: float) -> ProbeResult:
    """Map an httpx transport failure onto a ``ProbeResult`` with the key scrubbed from detail."""
    reason = scrub(str(exc), api_key)[:200]
    if isinstance(exc, httpx.TimeoutException):
        status, lead = ProbeStatus.timeout, "provider did not answer in time"
    else:
        status, lead = ProbeStatus.unreachable, "provider unreachable"
    text = f"{lead}: {type(exc).__name__}"
    if reason:
        text = f"{text}: {reason}"
    return ProbeResult(status, None, None, scrub(text, api_key), latency_ms)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for httpx.Headers and plain dicts."""
    if isinstance(headers, httpx.Headers):
        return headers.get(name)
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


class ProviderAdapter(ABC):
    """One upstream LLM provider: how to authenticate to it and how to probe a key's liveness."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    default_base_url: ClassVar[str]
    supports_probe: ClassVar[bool] = True
    # Cheapest authenticated read the provider offers; listing models costs no tokens.
    probe_path: ClassVar[str] = "/v1/models"

    @abstractmethod
    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Return the headers that authenticate a request with ``api_key``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"

    def probe_url(self, base_url: str | None = None) -> str:
        """Absolute URL of the liveness probe for ``base_url`` (default: the public API)."""
        return (base_url or self.default_base_url).rstrip("/") + self.probe_path

    def probe(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> ProbeResult:
        """Run one authenticated liveness call and classify it; never raises for HTTP outcomes."""
        if not self.supports_probe:
            return ProbeResult(
                ProbeStatus.unverifiable,
                None,
                None,
                f"{self.display_name} offers no liveness check; key stored unverified",
                0.0,
            )
        if not is_header_safe_key(api_key):
            return ProbeResult(
                ProbeStatus.invalid,
                None,
                None,
                "api key is empty or contains characters not allowed in an API key",
                0.0,
            )
        url = self.probe_url(base_url)
        headers = {"accept": "application/json", "user-agent": USER_AGENT}
        headers.update(self.auth_headers(api_key))
        # Explicit per-phase limits: a black-holed connect must not hang a request thread.
        limits = httpx.Timeout(timeout, connect=timeout, read=timeout, write=timeout, pool=timeout)
        started = time.perf_counter()
        try:
            # No redirects: a 3xx from an auth endpoint is not liveness, and following one
            # could forward the key to another host.
            with httpx.Client(
                timeout=limits, transport=transport, follow_redirects=False
            ) as client:
                response = client.get(url, headers=headers)
                latency_ms = _elapsed_ms(started)
                body = _json_or_none(response)
        except httpx.HTTPError as exc:
            return classify_exception(exc, api_key=api_key, latency_ms=_elapsed_ms(started))
        result = classify_response(
            response.status_code, response.headers, latency_ms=latency_ms, body=body
        )
        # Belt and braces: classification never echoes bodies, but keep the invariant local.
        if api_key in result.detail:
            return ProbeResult(
                result.status,
                result.http_status,
                result.retry_after_seconds,
                scrub(result.detail, api_key),
                result.latency_ms,
            )
        return result


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _json_or_none(response: httpx.Response) -> Any:
    """Decode a JSON body if there is one; error bodies from proxies are often HTML."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None
