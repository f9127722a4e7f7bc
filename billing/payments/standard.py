"""A generic payment provider speaking Standard Webhooks (``standardwebhooks``).

For billing systems without a dedicated adapter: they sign events with the Standard Webhooks
scheme (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) and send this body::

    {"type": "invoice.paid" | "invoice.payment_failed" | "invoice.voided"
             | "subscription.updated" | "subscription.canceled",
     "timestamp": "2026-12-01T10:00:00Z",          # when it happened at the provider
     "data": {"customer": "cus_123", "tenant": "ten_... (optional)",
              "invoice": {"id": "in_1", "amount_due": "49.00", "currency": "usd"},
              "subscription": {"id": "sub_1",
                               "status": "trialing|active|past_due|unpaid|canceled"}}}

They retry payments themselves, so a dunning attempt here sends the reminder notice only.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.dateparse import parse_datetime
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing.errors import BillingErrorCode
from billing.payments.base import (
    INVOICE_PAID,
    INVOICE_PAYMENT_FAILED,
    INVOICE_VOIDED,
    OTHER,
    SUBSCRIPTION_CANCELED,
    SUBSCRIPTION_UPDATED,
    ProviderEvent,
    RetryResult,
    WebhookRejected,
)

_KINDS = {
    INVOICE_PAID: INVOICE_PAID,
    INVOICE_PAYMENT_FAILED: INVOICE_PAYMENT_FAILED,
    INVOICE_VOIDED: INVOICE_VOIDED,
    SUBSCRIPTION_UPDATED: SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_CANCELED: SUBSCRIPTION_CANCELED,
}


def _invalid(detail: str) -> WebhookRejected:
    return WebhookRejected(BillingErrorCode.WEBHOOK_PAYLOAD_INVALID, detail)


def _micros(value) -> int:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise _invalid("invoice.amount_due must be a decimal string") from None
    if not amount.is_finite() or amount < 0:
        raise _invalid("invoice.amount_due must be a non-negative decimal")
    return int((amount * 1_000_000).to_integral_value())


class StandardWebhooksProvider:
    name = "standard"

    def parse_webhook(self, body: bytes, headers: dict[str, str]) -> ProviderEvent:
        secret = settings.STANDARD_WEBHOOK_SECRET
        if not secret:
            raise WebhookRejected(
                BillingErrorCode.WEBHOOK_NOT_CONFIGURED, "STANDARD_WEBHOOK_SECRET is not set."
            )
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError, TypeError) as exc:
            # The library also raises ValueError/TypeError on malformed signature headers.
            raise WebhookRejected(
                BillingErrorCode.WEBHOOK_SIGNATURE_INVALID, f"Standard Webhooks signature: {exc}"
            ) from None
        try:
            event = json.loads(body)
        except ValueError:
            raise _invalid("body is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise _invalid("expected {type, timestamp, data}")
        occurred = parse_datetime(str(event.get("timestamp", "")))
        if occurred is None or occurred.tzinfo is None:
            raise _invalid("timestamp must be ISO 8601 with a zone")
        data = event["data"]
        invoice = data.get("invoice") if isinstance(data.get("invoice"), dict) else {}
        subscription = (
            data.get("subscription") if isinstance(data.get("subscription"), dict) else {}
        )
        return ProviderEvent(
            provider=self.name,
            event_id=headers.get("webhook-id", ""),
            raw_type=str(event.get("type", "")),
            kind=_KINDS.get(str(event.get("type", "")), OTHER),
            occurred_at=occurred,
            customer_id=str(data.get("customer") or ""),
            tenant_hint=str(data.get("tenant") or ""),
            invoice_id=str(invoice.get("id") or ""),
            amount_due_micros=_micros(invoice.get("amount_due", "0")),
            currency=str(invoice.get("currency") or "usd"),
            subscription_id=str(subscription.get("id") or ""),
            subscription_status=str(subscription.get("status") or ""),
            payload=event,
        )

    def retry_invoice(self, invoice_id: str) -> RetryResult:
        return RetryResult(paid=False, detail="provider retries itself; reminder sent")

    def cancel_subscription(self, subscription_id: str) -> None:
        return None  # the provider learns of the cancellation from the outbox notice
