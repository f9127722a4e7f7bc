"""Prometheus metrics of the request gates and their providers (names from the audit)."""

from prometheus_client import Counter, Gauge, Histogram

GATE_LATENCY = Histogram(
    "gate_latency_seconds",
    "Time one request gate took to decide (cache hits included).",
    ["gate"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 0.5, 1.0),
)
LIFECYCLE_BLOCKS = Counter(
    "lifecycle_gate_blocks_total", "Requests refused by the lifecycle gate.", ["state"]
)
BILLING_BLOCKS = Counter(
    "billing_gate_blocks_total", "Requests refused by the billing gate.", ["reason"]
)
PROTECTION_DECISIONS = Counter(
    "protection_decisions_total",
    "Protection gate decisions: allowed, limited (by scope), fail_open, fail_closed.",
    ["result", "scope"],
)
PROVIDER_ERRORS = Counter(
    "provider_errors_total",
    "Failed calls to a gate provider (timeout, error, bad answer).",
    ["provider"],
)
PROVIDER_CIRCUIT_OPEN = Counter(
    "provider_circuit_open_total", "Times a gate provider's circuit breaker opened.", ["provider"]
)
GATE_FAIL_OPEN = Counter(
    "request_gate_fail_open_total",
    "Requests let through because a gate's provider failed and its fail mode is open "
    "(or BILLING_BYPASS was active).",
    ["gate"],
)
GATE_FAIL_CLOSED = Counter(
    "request_gate_fail_closed_total",
    "Requests refused (503) because a gate's provider failed and its fail mode is closed.",
    ["gate"],
)
GATE_LAST_KNOWN = Counter(
    "request_gate_last_known_total",
    "Gate decisions taken from a provider's last known answer while it failed.",
    ["gate"],
)
BILLING_BYPASS_ACTIVE = Gauge(
    "billing_bypass_active",
    "1 while BILLING_BYPASS_UNTIL is in the future in this process.",
    multiprocess_mode="max",
)
LIFECYCLE_TRANSITIONS = Counter(
    "lifecycle_transitions_total", "Subscription state transitions.", ["from", "to"]
)
