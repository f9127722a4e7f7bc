"""Subscription state: the only code that changes ``Subscription.state``.

States and the moves between them::

    trialing  -> active | past_due | canceled
    active    -> past_due | canceled
    past_due  -> active (paid) | suspended (dunning exhausted) | canceled
    suspended -> active (paid) | canceled
    canceled  -> active only through ``subscription_reactivate`` (an operator)

Every move writes a ledger entry on the tenant's control chain and an outbox notice
(``subscription.<state>``) in the same transaction, drops the gates' cached view of the tenant,
and counts ``lifecycle_transitions_total{from,to}`` once committed. What a state means for
requests is decided by the lifecycle gate (suspended, canceled: 403) and the billing gate
(past due beyond ``grace_until``: 402); see docs/decisions/0006-subscription-states-and-tenant-lifecycle.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import transaction

from billing.errors import BillingErrorCode
from billing.gates.cache import invalidate_tenant_now_and_at_commit as _invalidate
from billing.gates.metrics import LIFECYCLE_TRANSITIONS
from billing.models import Subscription
from controlplane.audit.outbox import outbox_enqueue
from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError

log = structlog.get_logger(__name__)
State = Subscription.State

ALLOWED: dict[str, frozenset[str]] = {
    State.TRIALING: frozenset({State.ACTIVE, State.PAST_DUE, State.CANCELED}),
    State.ACTIVE: frozenset({State.PAST_DUE, State.CANCELED}),
    State.PAST_DUE: frozenset({State.ACTIVE, State.SUSPENDED, State.CANCELED}),
    State.SUSPENDED: frozenset({State.ACTIVE, State.CANCELED}),
    State.CANCELED: frozenset(),
}


@dataclass(frozen=True)
class Transition:
    subscription: Subscription
    from_state: str
    to_state: str

    @property
    def changed(self) -> bool:
        return self.from_state != self.to_state


def can_move(from_state: str, to_state: str) -> bool:
    return from_state == to_state or to_state in ALLOWED[from_state]


def _invalid(subscription: Subscription, to_state: str) -> TollgateError:
    allowed = ", ".join(sorted(ALLOWED[subscription.state])) or "nothing"
    return TollgateError(
        BillingErrorCode.SUBSCRIPTION_TRANSITION_INVALID,
        f"A {subscription.state} subscription cannot become {to_state}.",
        remediation=f"From {subscription.state} it can become: {allowed}.",
        status=409,
        extra={"from": subscription.state, "to": to_state},
    )


def subscription_link(
    *,
    tenant,
    provider: str,
    customer_id: str = "",
    subscription_id: str = "",
    state: str = State.ACTIVE,
    actor: str,
) -> Subscription:
    """Attach the tenant to its payment-provider customer (one subscription per tenant)."""
    with transaction.atomic():
        existing = Subscription.objects.select_for_update().filter(tenant=tenant).first()
        if existing is not None:
            changed = {
                "provider": provider,
                "provider_customer_id": customer_id,
                "provider_subscription_id": subscription_id or existing.provider_subscription_id,
            }
            for name, value in changed.items():
                setattr(existing, name, value)
            existing.save(update_fields=[*changed, "updated_at"])
            subscription = existing
        else:
            now = db_now()
            subscription = Subscription.objects.create(
                tenant=tenant,
                state=state,
                provider=provider,
                provider_customer_id=customer_id,
                provider_subscription_id=subscription_id,
                state_changed_at=now,
                grace_until=now + timedelta(days=settings.BILLING_GRACE_DAYS)
                if state == State.PAST_DUE
                else None,
                past_due_since=now if state == State.PAST_DUE else None,
            )
        ledger_append_control(
            tenant_id=tenant.pk,
            kind="billing.subscription.linked",
            payload={
                "subscription": subscription.id,
                "provider": provider,
                "customer": customer_id,
                "state": subscription.state,
                "actor": actor,
            },
        )
        _invalidate(tenant.pk)
    return subscription


def subscription_transition(
    *,
    subscription_id: str,
    to: str,
    reason: str,
    actor: str,
    provider_at: datetime | None = None,
) -> Transition:
    """Move a subscription to ``to`` (same state: no-op, nothing written). Raises 409 for a
    move the state machine does not have. Runs in the caller's transaction if there is one."""
    return _transition(
        subscription_id=subscription_id,
        to=to,
        reason=reason,
        actor=actor,
        provider_at=provider_at,
        reactivate=False,
    )


def subscription_reactivate(*, subscription_id: str, actor: str, reason: str) -> Transition:
    """Operator action: bring a canceled (or suspended) subscription back to active."""
    return _transition(
        subscription_id=subscription_id,
        to=State.ACTIVE,
        reason=reason,
        actor=actor,
        provider_at=None,
        reactivate=True,
    )


def _transition(*, subscription_id, to, reason, actor, provider_at, reactivate) -> Transition:
    if to not in ALLOWED:
        raise ValueError(f"unknown subscription state {to!r}")
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
        previous = subscription.state
        if previous == to:
            _note_provider_time(subscription, provider_at)
            return Transition(subscription, previous, to)
        if not can_move(previous, to) and not (reactivate and previous == State.CANCELED):
            raise _invalid(subscription, to)
        now = db_now()
        subscription.state = to
        subscription.state_changed_at = now
        if to == State.PAST_DUE:
            subscription.past_due_since = now
            subscription.grace_until = now + timedelta(days=settings.BILLING_GRACE_DAYS)
        elif to in (State.ACTIVE, State.TRIALING):
            subscription.past_due_since = None
            subscription.grace_until = None
        if provider_at is not None and (
            subscription.provider_state_at is None or provider_at > subscription.provider_state_at
        ):
            subscription.provider_state_at = provider_at
        subscription.save(
            update_fields=[
                "state",
                "state_changed_at",
                "past_due_since",
                "grace_until",
                "provider_state_at",
                "updated_at",
            ]
        )
        payload = {
            "subscription": subscription.id,
            "from": previous,
            "to": to,
            "reason": reason,
            "actor": actor,
        }
        ledger_append_control(
            tenant_id=subscription.tenant_id,
            kind="billing.subscription.transition",
            payload=payload,
        )
        outbox_enqueue(
            tenant_id=subscription.tenant_id,
            event_type=f"subscription.{to}",
            payload={
                **payload,
                "grace_until": subscription.grace_until.isoformat()
                if subscription.grace_until
                else None,
            },
        )
        if to in (State.ACTIVE, State.CANCELED):
            from billing.services.dunning import dunning_close_for

            dunning_close_for(
                subscription=subscription, recovered=to == State.ACTIVE, reason=reason
            )
        _invalidate(subscription.tenant_id)
        transaction.on_commit(
            lambda: LIFECYCLE_TRANSITIONS.labels(**{"from": previous, "to": to}).inc()
        )
    log.info(
        "subscription_transition",
        subscription=subscription.id,
        tenant=subscription.tenant_id,
        from_state=previous,
        to_state=to,
        reason=reason,
    )
    return Transition(subscription, previous, to)


def _note_provider_time(subscription: Subscription, provider_at: datetime | None) -> None:
    if provider_at is not None and (
        subscription.provider_state_at is None or provider_at > subscription.provider_state_at
    ):
        subscription.provider_state_at = provider_at
        subscription.save(update_fields=["provider_state_at", "updated_at"])


def subscription_cancel_at_provider(*, subscription_id: str) -> str:
    """Tell the provider to stop invoicing a subscription canceled here (waits for the
    transaction that canceled it; a subscription no longer canceled is left alone)."""
    from billing.payments.registry import provider as payment_provider

    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().filter(pk=subscription_id).first()
        if subscription is None or subscription.state != State.CANCELED:
            return "not canceled"
        adapter = payment_provider(subscription.provider)
        external = subscription.provider_subscription_id
    if adapter is None or not external:
        return "no provider subscription"
    adapter.cancel_subscription(external)
    log.info("provider_subscription_canceled", subscription=subscription_id, external=external)
    return "canceled"
