"""Dunning: the schedule, the attempts (through the real broker and the real ``stripe`` client
against a local Stripe-speaking server), escalation, resume on payment, a refused enqueue
rolling its step back, and concurrent ticks."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from billing.models import DunningAttempt, DunningCampaign, Invoice, Subscription
from billing.payments.base import INVOICE_PAYMENT_FAILED, ProviderEvent
from billing.services.dunning import dunning_attempt_run, dunning_tick
from billing.services.payments import payment_event_receive
from billing.services.subscriptions import subscription_link
from billing.tasks import dunning_attempt_task, provider_subscription_cancel_task
from controlplane.audit.chain import control_chain
from controlplane.audit.models import LedgerEntry, OutboxEvent
from controlplane.celery import app as celery_app
from controlplane.core.clock import db_now
from tests import factories
from tests.api_contracts import assert_problem
from tests.billing.conftest import key_client
from tests.fakes.stripe_server import FakeStripe

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture(scope="module")
def _stripe_server():
    with FakeStripe() as server:
        yield server


@pytest.fixture
def fake_stripe(_stripe_server, settings):
    _stripe_server.payable.clear()
    _stripe_server.requests.clear()
    settings.STRIPE_API_BASE = _stripe_server.url
    settings.STRIPE_API_KEY = "sk_test_fake"
    settings.DUNNING_SCHEDULE_DAYS = [0, 3, 5, 7]
    return _stripe_server


@pytest.fixture
def queue():
    """Tasks go to a queue of this test's own on the real broker; the test reads them back."""
    name = f"test-{uuid.uuid4().hex}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = name
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    yield Queue(client, name)
    celery_app.conf.task_default_queue = previous
    client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    client.close()


class Queue:
    def __init__(self, client, name):
        self.client, self.name = client, name

    def messages(self) -> list[tuple[str, list]]:
        """(task name, args) of every message waiting, oldest first."""
        found = []
        for raw in reversed(self.client.lrange(self.name, 0, -1)):
            envelope = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
            found.append((envelope["headers"]["task"], args))
        return found

    def run_all(self) -> list:
        """Deliver every waiting message to its task, as a worker would, and empty the queue."""
        results = []
        for task_name, args in self.messages():
            results.append(celery_app.tasks[task_name].apply(args=args).get())
        self.client.delete(self.name)
        return results


@pytest.fixture
def broken_broker():
    """The broker refuses connections (nothing listens on the port)."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_connection_timeout)
    conf.broker_url, conf.broker_connection_timeout = "redis://127.0.0.1:9/0", 0.5
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    yield
    conf.broker_url, conf.broker_connection_timeout = saved
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def past_due(tenant, invoice_id: str = "in_1") -> Subscription:
    sub = subscription_link(
        tenant=tenant, provider="stripe", customer_id=f"cus_{tenant.slug}", actor="test"
    )
    Subscription.objects.filter(pk=sub.pk).update(provider_subscription_id="sub_stripe_1")
    payment_event_receive(
        event=ProviderEvent(
            provider="stripe",
            event_id=f"evt_{uuid.uuid4().hex}",
            raw_type="invoice.payment_failed",
            kind=INVOICE_PAYMENT_FAILED,
            occurred_at=datetime.now(UTC),
            customer_id=f"cus_{tenant.slug}",
            invoice_id=invoice_id,
            amount_due_micros=49_000_000,
        )
    )
    sub.refresh_from_db()
    return sub


def make_due(campaign_id: str) -> None:
    """Time passes: the campaign's next step is due now (by the database clock the tick uses,
    which inside the test's transaction stands at the transaction's start)."""
    DunningCampaign.objects.filter(pk=campaign_id).update(
        next_action_at=db_now() - timedelta(seconds=1)
    )


def ledger_kinds(tenant):
    return list(
        LedgerEntry.objects.filter(chain=control_chain(tenant.id)).values_list("kind", flat=True)
    )


def test_schedule_retries_then_suspends_then_cancels(tenant, fake_stripe, queue):
    sub = past_due(tenant)
    campaign = DunningCampaign.objects.get(subscription=sub)
    assert campaign.schedule_days == [0, 3, 5, 7] and campaign.max_attempts == 4
    for number in range(1, 5):
        steps = dunning_tick()
        assert [s.kind for s in steps] == ["attempt"]
        assert queue.messages() == [
            ("billing.dunning_attempt_task", [sub.id, campaign.id, steps[0].attempt_id])
        ]
        assert queue.run_all() == ["failed"]
        attempt = DunningAttempt.objects.get(campaign=campaign, number=number)
        assert attempt.state == "failed" and "card_declined" in attempt.detail
        campaign.refresh_from_db()
        if number < 4:
            # Next retry on day schedule[number] after the first failure.
            expected = campaign.started_at + timedelta(days=campaign.schedule_days[number])
            assert campaign.next_action_at == expected
        assert dunning_tick() == []  # nothing due until then
        make_due(campaign.id)
    assert fake_stripe.requests.count(("POST", "/v1/invoices/in_1/pay")) == 4
    assert OutboxEvent.objects.filter(tenant=tenant, event_type="dunning.attempt").count() == 4

    assert [s.kind for s in dunning_tick()] == ["suspend"]
    sub.refresh_from_db()
    assert sub.state == "suspended"
    assert OutboxEvent.objects.filter(event_type="subscription.suspended").exists()
    assert_problem(key_client(tenant).get("/api/v1/projects"), 403, "TENANT_SUSPENDED")

    make_due(campaign.id)
    assert [s.kind for s in dunning_tick()] == ["cancel"]
    sub.refresh_from_db()
    campaign.refresh_from_db()
    assert sub.state == "canceled" and campaign.state == "exhausted"
    assert queue.messages() == [("billing.provider_subscription_cancel_task", [sub.id])]
    assert queue.run_all() == ["canceled"]
    assert ("DELETE", "/v1/subscriptions/sub_stripe_1") in fake_stripe.requests
    kinds = ledger_kinds(tenant)
    assert kinds.count("billing.dunning.attempt") == 4
    assert kinds.count("billing.subscription.transition") == 3  # past_due, suspended, canceled


def test_a_successful_retry_resumes_the_subscription(tenant, fake_stripe, queue):
    sub = past_due(tenant)
    campaign = DunningCampaign.objects.get(subscription=sub)
    dunning_tick()
    queue.run_all()  # declined
    make_due(campaign.id)
    fake_stripe.payable.add("in_1")
    dunning_tick()
    assert queue.run_all() == ["paid"]
    sub.refresh_from_db()
    campaign.refresh_from_db()
    assert sub.state == "active" and campaign.state == "recovered"
    assert Invoice.objects.get(provider_invoice_id="in_1").status == "paid"
    assert DunningAttempt.objects.get(campaign=campaign, number=2).state == "succeeded"
    make_due(campaign.id)
    assert dunning_tick() == []  # a recovered campaign takes no more steps


def test_a_refused_enqueue_rolls_the_attempt_step_back(tenant, fake_stripe, queue, broken_broker):
    sub = past_due(tenant)
    campaign = DunningCampaign.objects.get(subscription=sub)
    before = (campaign.attempts_made, campaign.next_action_at)
    notices = OutboxEvent.objects.filter(event_type="dunning.attempt").count()
    assert dunning_tick() == []
    campaign.refresh_from_db()
    assert (campaign.attempts_made, campaign.next_action_at) == before
    assert not DunningAttempt.objects.exists()
    assert OutboxEvent.objects.filter(event_type="dunning.attempt").count() == notices
    assert "billing.dunning.attempt" not in ledger_kinds(tenant)


def test_a_refused_enqueue_reverts_the_cancel_transition(tenant, fake_stripe, queue):
    sub = past_due(tenant)
    campaign = DunningCampaign.objects.get(subscription=sub)
    for _ in range(4):
        dunning_tick()
        queue.run_all()
        make_due(campaign.id)
    dunning_tick()  # suspend
    make_due(campaign.id)
    transitions = ledger_kinds(tenant).count("billing.subscription.transition")
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_connection_timeout)
    conf.broker_url, conf.broker_connection_timeout = "redis://127.0.0.1:9/0", 0.5
    celery_app._pool = celery_app.amqp._producer_pool = None
    try:
        assert dunning_tick() == []
    finally:
        conf.broker_url, conf.broker_connection_timeout = saved
        celery_app._pool = celery_app.amqp._producer_pool = None
    sub.refresh_from_db()
    campaign.refresh_from_db()
    assert sub.state == "suspended" and campaign.state == "active"
    assert ledger_kinds(tenant).count("billing.subscription.transition") == transitions
    assert not OutboxEvent.objects.filter(event_type="subscription.canceled").exists()
    # The broker is back: the next tick cancels.
    assert [s.kind for s in dunning_tick()] == ["cancel"]
    sub.refresh_from_db()
    assert sub.state == "canceled"


def test_a_second_delivery_of_an_attempt_does_nothing(tenant, fake_stripe, queue):
    sub = past_due(tenant)
    dunning_tick()
    ((_, args),) = queue.messages()
    assert dunning_attempt_task.apply(args=args).get() == "failed"
    assert dunning_attempt_task.apply(args=args).get() == "nothing to do"
    assert fake_stripe.requests.count(("POST", "/v1/invoices/in_1/pay")) == 1
    assert (
        dunning_attempt_run(
            subscription_id=sub.id, campaign_id=args[1], attempt_id="dat_rolled_back"
        )
        == "nothing to do"
    )


def test_cancel_task_leaves_a_subscription_that_is_no_longer_canceled_alone(tenant, fake_stripe):
    sub = past_due(tenant)
    assert provider_subscription_cancel_task.apply(args=[sub.id]).get() == "not canceled"
    assert fake_stripe.requests == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_ticks_take_each_step_once(fake_stripe, queue):
    tenants = [factories.make_tenant(f"t{i}") for i in range(5)]
    for i, tenant in enumerate(tenants):
        past_due(tenant, invoice_id=f"in_{i}")
    barrier = threading.Barrier(6)
    steps, errors = [], []

    def tick():
        try:
            barrier.wait()
            steps.extend(dunning_tick())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(s.kind for s in steps) == ["attempt"] * 5
    assert DunningAttempt.objects.count() == 5
    assert len(queue.messages()) == 5
