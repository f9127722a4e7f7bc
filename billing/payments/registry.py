"""Payment providers by name (explicit; never guessed from payloads)."""

from __future__ import annotations

from billing.payments.base import PaymentProvider
from billing.payments.standard import StandardWebhooksProvider
from billing.payments.stripe_provider import StripeProvider

PROVIDERS: dict[str, PaymentProvider] = {
    "stripe": StripeProvider(),
    "standard": StandardWebhooksProvider(),
}


def provider(name: str) -> PaymentProvider | None:
    return PROVIDERS.get(name)
