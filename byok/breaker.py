"""The BYOK probes' breaker is the shared one in ``controlplane.core.breaker`` (kept importable here)."""

from controlplane.core.breaker import BreakerState, CircuitBreaker

__all__ = ["BreakerState", "CircuitBreaker"]
