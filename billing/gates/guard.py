"""A gate provider behind its guards: cache, circuit breaker, last known answer.

``Guarded.get(tenant_id)`` answers from the per-process cache while the entry is younger than
the TTL (no I/O: the steady state), else asks the provider (its own timeout applies) through a
circuit breaker. When the provider fails or the breaker is open, the last known answer is used
if it is younger than ``GATE_LAST_KNOWN_MAX_SECONDS``; otherwise ``ProviderUnavailable`` tells
the gate to apply its fail mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings

from billing.gates import cache
from billing.gates.metrics import PROVIDER_CIRCUIT_OPEN, PROVIDER_ERRORS
from billing.gates.providers import ProviderError
from controlplane.core.breaker import LocalCircuitBreaker

log = structlog.get_logger(__name__)


class ProviderUnavailable(Exception):
    def __init__(self, provider: str, cause: str) -> None:
        super().__init__(f"{provider}: {cause}")
        self.provider = provider
        self.cause = cause  # timeout | error | invalid | circuit_open


@dataclass(frozen=True, slots=True)
class Answer:
    value: Any
    source: str  # fresh | cache | last_known


def _opened(provider: str) -> None:
    PROVIDER_CIRCUIT_OPEN.labels(provider=provider).inc()
    log.warning("gate_provider_circuit_open", provider=provider)


_breakers: dict[str, LocalCircuitBreaker] = {}
# The breakers' clock (tests put a controllable one here instead of waiting).
clock: Callable[[], float] = time.monotonic


def _now() -> float:
    return clock()


def breaker_for(provider: str) -> LocalCircuitBreaker:
    """This process's breaker of ``provider``, built from the settings on first use."""
    breaker = _breakers.get(provider)
    if breaker is None:
        breaker = _breakers.setdefault(
            provider,
            LocalCircuitBreaker(
                name=provider,
                failure_threshold=settings.GATE_BREAKER_FAILURE_THRESHOLD,
                reset_timeout_seconds=settings.GATE_BREAKER_RESET_SECONDS,
                clock=_now,
                on_open=_opened,
            ),
        )
    return breaker


def reset_breakers() -> None:
    """Forget every breaker (settings changed; tests)."""
    _breakers.clear()


class Guarded:
    """One kind of provider answer (``kind``) cached per tenant for ``ttl`` seconds."""

    def __init__(self, *, kind: str, provider: str, fetch: Callable[[str], Any], ttl: float):
        self.kind = kind
        self.provider = provider
        self._fetch = fetch
        self._ttl = ttl

    def get(self, tenant_id: str) -> Answer:
        entry = cache.get(self.kind, tenant_id)
        if entry is not None and entry.age() < self._ttl:
            return Answer(entry.value, "cache")
        breaker = breaker_for(self.provider)
        if not breaker.allow():
            return self._fallback(tenant_id, entry, "circuit_open")
        try:
            value = self._fetch(tenant_id)
        except ProviderError as exc:
            PROVIDER_ERRORS.labels(provider=self.provider).inc()
            breaker.record_failure()
            log.warning(
                "gate_provider_failed", provider=self.provider, cause=exc.kind, error=str(exc)
            )
            return self._fallback(tenant_id, entry, exc.kind)
        breaker.record_success()
        cache.put(self.kind, tenant_id, value)
        return Answer(value, "fresh")

    def _fallback(self, tenant_id: str, entry, cause: str) -> Answer:
        if entry is not None and entry.age() < settings.GATE_LAST_KNOWN_MAX_SECONDS:
            return Answer(entry.value, "last_known")
        raise ProviderUnavailable(self.provider, cause)
