"""What every payment provider adapter gives the billing services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# Normalised event types the state machine acts on; anything else is stored and ignored.
INVOICE_PAID = "invoice.paid"
INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
INVOICE_VOIDED = "invoice.voided"
SUBSCRIPTION_UPDATED = "subscription.updated"
SUBSCRIPTION_CANCELED = "subscription.canceled"
OTHER = "other"

# Provider subscription statuses -> ours (statuses not listed change nothing).
STATUS_MAP = {
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    "unpaid": "suspended",
    "canceled": "canceled",
}


class WebhookRejected(Exception):
    """The body is not a genuine, well-formed event of this provider (answer 400)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class ProviderEvent:
    provider: str
    event_id: str
    raw_type: str
    kind: str  # one of the normalised types above
    occurred_at: datetime  # the provider's timestamp
    customer_id: str = ""
    tenant_hint: str = ""  # a tenant id carried in the provider's metadata
    invoice_id: str = ""
    amount_due_micros: int = 0
    currency: str = "usd"
    subscription_id: str = ""
    subscription_status: str = ""  # the provider's own word
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryResult:
    paid: bool
    detail: str


class PaymentProvider(Protocol):
    name: str

    def parse_webhook(self, body: bytes, headers: dict[str, str]) -> ProviderEvent:
        """Verify the signature and normalise the event; raise ``WebhookRejected``."""

    def retry_invoice(self, invoice_id: str) -> RetryResult:
        """Try to collect an open invoice now (a dunning attempt)."""

    def cancel_subscription(self, subscription_id: str) -> None:
        """Stop the provider from invoicing a subscription we canceled."""
