"""The subscription state machine: only its service moves it, every move is ledgered."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from billing.models import Subscription
from billing.services.subscriptions import (
    ALLOWED,
    subscription_link,
    subscription_reactivate,
    subscription_transition,
)
from controlplane.audit.chain import control_chain
from controlplane.audit.models import LedgerEntry, OutboxEvent
from controlplane.audit.verify import verify_ledger
from controlplane.core.errors import TollgateError

pytestmark = pytest.mark.django_db
STATES = list(ALLOWED)


@pytest.fixture
def subscription(tenant):
    return subscription_link(tenant=tenant, provider="manual", actor="test")


def _put(subscription, state):
    Subscription.objects.filter(pk=subscription.pk).update(
        state=state, grace_until=subscription.created_at if state == "past_due" else None
    )


@pytest.mark.parametrize("start", STATES)
@pytest.mark.parametrize("to", STATES)
def test_every_move_of_the_table_and_no_other(subscription, start, to):
    _put(subscription, start)
    if start == to:
        assert not subscription_transition(
            subscription_id=subscription.id, to=to, reason="t", actor="t"
        ).changed
    elif to in ALLOWED[start]:
        result = subscription_transition(
            subscription_id=subscription.id, to=to, reason="t", actor="t"
        )
        assert (result.from_state, result.to_state) == (start, to)
    else:
        with pytest.raises(TollgateError) as exc:
            subscription_transition(subscription_id=subscription.id, to=to, reason="t", actor="t")
        assert exc.value.status_code == 409
        assert exc.value.code == "SUBSCRIPTION_TRANSITION_INVALID"
    subscription.refresh_from_db()
    assert subscription.state == (to if start == to or to in ALLOWED[start] else start)


def test_a_move_is_ledgered_noticed_and_counted(
    tenant, subscription, django_capture_on_commit_callbacks
):
    before = (
        REGISTRY.get_sample_value(
            "lifecycle_transitions_total", {"from": "active", "to": "canceled"}
        )
        or 0
    )
    with django_capture_on_commit_callbacks(execute=True):
        subscription_transition(
            subscription_id=subscription.id, to="canceled", reason="customer", actor="admin:x"
        )
    entry = LedgerEntry.objects.filter(
        chain=control_chain(tenant.id), kind="billing.subscription.transition"
    ).get()
    assert entry.payload == {
        "subscription": subscription.id,
        "from": "active",
        "to": "canceled",
        "reason": "customer",
        "actor": "admin:x",
    }
    assert OutboxEvent.objects.filter(event_type="subscription.canceled").count() == 1
    assert (
        REGISTRY.get_sample_value(
            "lifecycle_transitions_total", {"from": "active", "to": "canceled"}
        )
        == before + 1
    )
    assert verify_ledger(tenant_id=tenant.id).ok


def test_past_due_sets_a_grace_period_and_paying_clears_it(subscription, settings):
    settings.BILLING_GRACE_DAYS = 3
    subscription_transition(subscription_id=subscription.id, to="past_due", reason="t", actor="t")
    subscription.refresh_from_db()
    assert (subscription.grace_until - subscription.past_due_since).days == 3
    subscription_transition(subscription_id=subscription.id, to="active", reason="t", actor="t")
    subscription.refresh_from_db()
    assert subscription.grace_until is None and subscription.past_due_since is None


def test_only_an_operator_brings_back_a_canceled_subscription(subscription):
    subscription_transition(subscription_id=subscription.id, to="canceled", reason="t", actor="t")
    with pytest.raises(TollgateError):
        subscription_transition(subscription_id=subscription.id, to="active", reason="t", actor="t")
    result = subscription_reactivate(
        subscription_id=subscription.id, actor="admin:o", reason="deal"
    )
    assert (result.from_state, result.to_state) == ("canceled", "active")


def test_the_database_refuses_past_due_without_grace(subscription):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(state="past_due", grace_until=None)
