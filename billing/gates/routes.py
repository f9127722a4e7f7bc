"""Which requests the gates look at (the documented exempt list) and which are metered."""

from __future__ import annotations

# Never gated: probes and metrics (orchestrators and Prometheus must always get through), SCIM
# (identity providers onboard and offboard users even for a blocked tenant), the payment
# webhooks (a payment must be able to unblock a tenant), static files, the API schema and
# docs, public keys, and the operator admin (operators are not tenant traffic).
EXEMPT_PREFIXES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/scim/v2/",
    "/webhooks/billing/",
    "/static/",
    "/admin/",
    "/api/schema/",
    "/api/docs/",
    "/.well-known/",
)

# Passed by the billing gate (lifecycle and protection still apply): a blocked tenant can read
# its own plan, subscription and what to do.
BILLING_EXEMPT = (("GET", "/api/v1/tenant"),)

# Requests that create gate decisions count against ``decisions_per_month``.
METERED_PREFIXES = (
    "/api/v1/gate/",
    "/api/v1/llm/",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/messages",
)


def is_exempt(path: str) -> bool:
    return path.startswith(EXEMPT_PREFIXES)


def is_billing_exempt(method: str, path: str) -> bool:
    return (method, path.rstrip("/")) in BILLING_EXEMPT


def is_metered(method: str, path: str) -> bool:
    return method == "POST" and path.startswith(METERED_PREFIXES)
