"""Stripe: webhooks verified with the ``stripe`` package's signature scheme; retries and
cancellations through its API client (``STRIPE_API_BASE`` points it elsewhere in tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import stripe
from django.conf import settings

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
    "invoice.paid": INVOICE_PAID,
    "invoice.payment_succeeded": INVOICE_PAID,
    "invoice.payment_failed": INVOICE_PAYMENT_FAILED,
    "invoice.voided": INVOICE_VOIDED,
    "invoice.marked_uncollectible": INVOICE_VOIDED,
    "customer.subscription.created": SUBSCRIPTION_UPDATED,
    "customer.subscription.updated": SUBSCRIPTION_UPDATED,
    "customer.subscription.deleted": SUBSCRIPTION_CANCELED,
}
TENANT_METADATA_KEY = "tollgate_tenant"


def _cents_to_micros(value) -> int:
    return int(value) * 10_000 if isinstance(value, int) and value >= 0 else 0


def _invoice_subscription(invoice: dict) -> tuple[str, dict]:
    """Subscription id and metadata of an invoice, in the old and the current API shape."""
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    sub = details.get("subscription") or invoice.get("subscription") or ""
    metadata = details.get("metadata") or invoice.get("subscription_details", {}).get(
        "metadata", {}
    )
    return (sub if isinstance(sub, str) else ""), (metadata if isinstance(metadata, dict) else {})


class StripeProvider:
    name = "stripe"

    def parse_webhook(self, body: bytes, headers: dict[str, str]) -> ProviderEvent:
        secret = settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            raise WebhookRejected(
                BillingErrorCode.WEBHOOK_NOT_CONFIGURED, "STRIPE_WEBHOOK_SECRET is not set."
            )
        signature = headers.get("stripe-signature", "")
        try:
            stripe.Webhook.construct_event(body, signature, secret)
        except stripe.SignatureVerificationError as exc:
            raise WebhookRejected(
                BillingErrorCode.WEBHOOK_SIGNATURE_INVALID, f"Stripe signature: {exc}"
            ) from None
        except ValueError as exc:
            raise WebhookRejected(BillingErrorCode.WEBHOOK_PAYLOAD_INVALID, str(exc)) from None
        event = json.loads(body)
        return self._normalise(event)

    def _normalise(self, event: dict) -> ProviderEvent:
        try:
            event_id = str(event["id"])
            raw_type = str(event["type"])
            created = datetime.fromtimestamp(int(event["created"]), tz=UTC)
            obj = event["data"]["object"]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise WebhookRejected(
                BillingErrorCode.WEBHOOK_PAYLOAD_INVALID, f"not a Stripe event: {exc!r}"
            ) from None
        if not isinstance(obj, dict):
            raise WebhookRejected(BillingErrorCode.WEBHOOK_PAYLOAD_INVALID, "data.object")
        kind = _KINDS.get(raw_type, OTHER)
        common = {
            "provider": self.name,
            "event_id": event_id,
            "raw_type": raw_type,
            "kind": kind,
            "occurred_at": created,
            "customer_id": obj.get("customer") if isinstance(obj.get("customer"), str) else "",
            "payload": event,
        }
        if obj.get("object") == "invoice":
            sub_id, metadata = _invoice_subscription(obj)
            return ProviderEvent(
                **common,
                invoice_id=str(obj.get("id", "")),
                amount_due_micros=_cents_to_micros(obj.get("amount_due")),
                currency=str(obj.get("currency") or "usd"),
                subscription_id=sub_id,
                tenant_hint=str(metadata.get(TENANT_METADATA_KEY, "")),
            )
        if obj.get("object") == "subscription":
            metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            return ProviderEvent(
                **common,
                subscription_id=str(obj.get("id", "")),
                subscription_status=str(obj.get("status", "")),
                tenant_hint=str(metadata.get(TENANT_METADATA_KEY, "")),
            )
        return ProviderEvent(**{**common, "kind": OTHER})

    def _client(self) -> stripe.StripeClient:
        options = {}
        if settings.STRIPE_API_BASE:
            options["base_addresses"] = {"api": settings.STRIPE_API_BASE}
        return stripe.StripeClient(
            settings.STRIPE_API_KEY,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
            **options,
        )

    def retry_invoice(self, invoice_id: str) -> RetryResult:
        try:
            invoice = self._client().v1.invoices.pay(invoice_id)
        except stripe.CardError as exc:
            return RetryResult(
                paid=False, detail=f"declined: {exc.code or ''} {exc.user_message or ''}".strip()
            )
        except stripe.StripeError as exc:
            # Anything else (API down, invalid request): not paid; the next attempt will retry.
            return RetryResult(
                paid=False, detail=f"{type(exc).__name__}: {exc.user_message or exc}"[:300]
            )
        return RetryResult(paid=invoice.status == "paid", detail=f"invoice {invoice.status}")

    def cancel_subscription(self, subscription_id: str) -> None:
        self._client().v1.subscriptions.cancel(subscription_id)
