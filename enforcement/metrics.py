"""Prometheus metrics of the enforcement path."""

from prometheus_client import Counter, Histogram

GATE_DECISIONS = Counter(
    "gate_decisions_total",
    "Gate decisions by source, outcome and mode.",
    ["source", "outcome", "mode"],
)
GATE_LATENCY = Histogram(
    "gate_decision_latency_seconds",
    "Time to decide, from validated input to committed decision.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GATE_FAIL_OPEN = Counter(
    "gate_fail_open_total", "Decisions answered ALLOW because Tollgate could not decide."
)
GATE_FAIL_CLOSED = Counter(
    "gate_fail_closed_total", "Decisions refused because Tollgate could not decide."
)
RESERVATIONS_EXPIRED = Counter(
    "reservations_expired_total", "Reservations released by the expiry sweep."
)
LATE_COMMITS = Counter("reservations_late_commits_total", "Commits that arrived after expiry.")
INVARIANT_VIOLATIONS = Counter(
    "budget_invariant_violations_total",
    "Commits above the reserved amount (money spent beyond the hold).",
)
POLICY_RULE_ERRORS = Counter(
    "policy_rule_errors_total",
    "Policy rules that failed at run time (the fail mode answered).",
    ["rule_id"],
)
APPROVALS_RESOLVED = Counter(
    "approvals_resolved_total", "Approval requests resolved, by final state.", ["state"]
)
APPROVAL_TOKENS = Counter(
    "approval_tokens_total",
    "Approval token events: issued, consumed, rejected (by reason class), replayed.",
    ["event"],
)

LLM_CALLS = Counter(
    "tollgate_llm_calls_total",
    "LLM calls through the gateway, by provider and how they were committed.",
    ["provider", "commit"],
)
LLM_DENIALS = Counter(
    "tollgate_llm_denials_total", "LLM calls refused by the gateway, by reason.", ["reason"]
)
LLM_ABUSE_SIGNALS = Counter(
    "tollgate_llm_abuse_signals_total",
    "Keys or client addresses refused more than LLM_ABUSE_DENIALS_PER_MINUTE times a minute.",
    ["scope"],
)
