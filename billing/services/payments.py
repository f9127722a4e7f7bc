"""Payment events: store each verified event once, then let it drive the subscription.

Once: ``PaymentEvent`` is UNIQUE(provider, event_id); a replay finds the stored row and changes
nothing. Out of order: a subscription remembers the provider timestamp of the newest event that
set its state (``provider_state_at``); an older event is stored as ``stale`` and moves nothing.
An invoice that is paid or voided stays so (a late ``payment_failed`` for it is stale too).
"""

from __future__ import annotations

import structlog
from django.db import IntegrityError, transaction

from billing.models import Invoice, PaymentEvent, Subscription
from billing.payments.base import (
    INVOICE_PAID,
    INVOICE_PAYMENT_FAILED,
    INVOICE_VOIDED,
    OTHER,
    STATUS_MAP,
    SUBSCRIPTION_CANCELED,
    SUBSCRIPTION_UPDATED,
    ProviderEvent,
)
from billing.services.subscriptions import can_move, subscription_link, subscription_transition
from controlplane.tenancy.models import Tenant

log = structlog.get_logger(__name__)
Outcome = PaymentEvent.Outcome
State = Subscription.State


def payment_event_receive(*, event: ProviderEvent) -> tuple[PaymentEvent, bool]:
    """Store and apply a verified event; returns (row, created). A replay is (stored row, False)."""
    existing = PaymentEvent.objects.filter(provider=event.provider, event_id=event.event_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            row = PaymentEvent.objects.create(
                provider=event.provider,
                event_id=event.event_id,
                event_type=event.raw_type,
                occurred_at=event.occurred_at,
                payload=event.payload,
                outcome=Outcome.IGNORED,
            )
            subscription = None if event.kind == OTHER else _subscription_for(event)
            if event.kind == OTHER:
                outcome, detail = Outcome.IGNORED, f"{event.raw_type} is not acted on"
            elif subscription is None:
                outcome, detail = Outcome.UNMATCHED, "no subscription for this customer"
            else:
                row.tenant_id = subscription.tenant_id
                outcome, detail = _apply(event, subscription)
            row.outcome, row.detail = outcome, detail[:300]
            row.save(update_fields=["tenant", "outcome", "detail"])
    except IntegrityError:
        # The same event arrived twice at once: the other request stored (and applied) it.
        stored = PaymentEvent.objects.filter(
            provider=event.provider, event_id=event.event_id
        ).first()
        if stored is None:
            raise
        return stored, False
    log.info(
        "payment_event",
        provider=event.provider,
        event_id=event.event_id,
        type=event.raw_type,
        outcome=row.outcome,
        detail=row.detail,
        tenant=row.tenant_id,
    )
    return row, True


def _subscription_for(event: ProviderEvent) -> Subscription | None:
    """By the provider's customer id; else link the tenant named in the provider's metadata."""
    if event.customer_id:
        found = (
            Subscription.objects.select_for_update()
            .filter(provider=event.provider, provider_customer_id=event.customer_id)
            .first()
        )
        if found is not None:
            return found
    if event.tenant_hint:
        tenant = Tenant.objects.filter(pk=event.tenant_hint).first()
        if tenant is not None:
            subscription_link(
                tenant=tenant,
                provider=event.provider,
                customer_id=event.customer_id,
                subscription_id=event.subscription_id,
                actor=f"{event.provider}:{event.event_id}",
            )
            return Subscription.objects.select_for_update().get(tenant=tenant)
    return None


def _apply(event: ProviderEvent, subscription: Subscription) -> tuple[str, str]:
    if event.kind in (INVOICE_PAID, INVOICE_PAYMENT_FAILED, INVOICE_VOIDED):
        return _apply_invoice(event, subscription)
    if event.kind in (SUBSCRIPTION_UPDATED, SUBSCRIPTION_CANCELED):
        to = State.CANCELED if event.kind == SUBSCRIPTION_CANCELED else None
        to = to or STATUS_MAP.get(event.subscription_status)
        if to is None:
            return Outcome.IGNORED, f"provider status {event.subscription_status!r} changes nothing"
        return _move(event, subscription, to, reason=event.raw_type)
    return Outcome.IGNORED, f"{event.raw_type} is not acted on"


def _stale(event: ProviderEvent, subscription: Subscription) -> bool:
    return (
        subscription.provider_state_at is not None
        and event.occurred_at < subscription.provider_state_at
    )


def _move(event, subscription, to: str, *, reason: str) -> tuple[str, str]:
    if _stale(event, subscription):
        return Outcome.STALE, (
            f"older than the state already applied ({subscription.provider_state_at.isoformat()})"
        )
    if not can_move(subscription.state, to):
        return Outcome.IGNORED, f"{subscription.state} cannot become {to}"
    result = subscription_transition(
        subscription_id=subscription.id,
        to=to,
        reason=reason,
        actor=f"{event.provider}:{event.event_id}",
        provider_at=event.occurred_at,
    )
    subscription.refresh_from_db()
    if not result.changed:
        return Outcome.APPLIED, f"already {to}"
    return Outcome.APPLIED, f"{result.from_state} -> {to}"


def _apply_invoice(event: ProviderEvent, subscription: Subscription) -> tuple[str, str]:
    if not event.invoice_id:
        return Outcome.IGNORED, "invoice event without an invoice id"
    invoice = (
        Invoice.objects.select_for_update()
        .filter(provider=event.provider, provider_invoice_id=event.invoice_id)
        .first()
    )
    if invoice is not None and invoice.status in (Invoice.Status.PAID, Invoice.Status.VOID):
        return Outcome.STALE, f"invoice {event.invoice_id} is already {invoice.status}"
    status = {
        INVOICE_PAID: Invoice.Status.PAID,
        INVOICE_PAYMENT_FAILED: Invoice.Status.OPEN,
        INVOICE_VOIDED: Invoice.Status.VOID,
    }[event.kind]
    if invoice is None:
        invoice = Invoice.objects.create(
            tenant_id=subscription.tenant_id,
            subscription=subscription,
            provider=event.provider,
            provider_invoice_id=event.invoice_id,
            status=status,
            amount_due_micros=event.amount_due_micros,
            currency=event.currency[:3],
            status_at=event.occurred_at,
        )
    elif event.occurred_at >= invoice.status_at or status != Invoice.Status.OPEN:
        invoice.status = status
        invoice.status_at = max(invoice.status_at, event.occurred_at)
        invoice.amount_due_micros = event.amount_due_micros or invoice.amount_due_micros
        invoice.save(update_fields=["status", "status_at", "amount_due_micros", "updated_at"])
    return invoice_settled(invoice=invoice, subscription=subscription, event=event)


def invoice_settled(*, invoice: Invoice, subscription: Subscription, event) -> tuple[str, str]:
    """What an invoice's new status means for the subscription and its dunning."""
    from billing.services.dunning import dunning_start

    actor = f"{event.provider}:{event.event_id}" if event else "dunning"
    occurred = event.occurred_at if event else None
    if invoice.status == Invoice.Status.OPEN:
        if subscription.state in (State.ACTIVE, State.TRIALING):
            if event is not None and _stale(event, subscription):
                return Outcome.STALE, "payment failure older than the applied state"
            subscription_transition(
                subscription_id=subscription.id,
                to=State.PAST_DUE,
                reason="payment_failed",
                actor=actor,
                provider_at=occurred,
            )
        if subscription.state != State.CANCELED:
            dunning_start(invoice=invoice)
        return Outcome.APPLIED, f"invoice {invoice.provider_invoice_id} unpaid; dunning"
    # Paid or voided: the subscription resumes once nothing else is open.
    if subscription.state in (State.PAST_DUE, State.SUSPENDED):
        others = (
            Invoice.objects.filter(subscription=subscription, status=Invoice.Status.OPEN)
            .exclude(pk=invoice.pk)
            .exists()
        )
        if not others:
            subscription_transition(
                subscription_id=subscription.id,
                to=State.ACTIVE,
                reason=f"invoice_{invoice.status}",
                actor=actor,
                provider_at=occurred,
            )
            return Outcome.APPLIED, f"invoice {invoice.status}; subscription resumed"
    from billing.services.dunning import dunning_close_for_invoice

    dunning_close_for_invoice(invoice=invoice, recovered=invoice.status == Invoice.Status.PAID)
    return Outcome.APPLIED, f"invoice {invoice.status}"
