"""Outbox events become Standard Webhooks deliveries: signed, retried with backoff, at-least-once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading

import pytest
from django.db import transaction

from controlplane.audit.models import OutboxDelivery, WebhookEndpoint
from controlplane.audit.outbox import MAX_ATTEMPTS, deliver_due, dispatch_events, outbox_enqueue
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.django_db


def _enqueue(tenant, event_type="decision.created", payload=None):
    with transaction.atomic():
        return outbox_enqueue(
            tenant_id=tenant.id, event_type=event_type, payload=payload or {"x": 1}
        )


def _make_due():
    OutboxDelivery.objects.filter(state="pending").update(next_attempt_at="2000-01-01T00:00:00Z")


def test_delivery_is_signed_per_standard_webhooks(tenant):
    with WebhookReceiver() as receiver:
        endpoint = WebhookEndpoint.objects.create(tenant=tenant, url=receiver.url)
        event = _enqueue(tenant, payload={"decision_id": "dec_1"})
        assert dispatch_events() == 1
        assert deliver_due() == {"delivered": 1, "retry": 0, "dead": 0}
        headers, body = receiver.requests[0]
    assert headers["webhook-id"] == event.id
    key = base64.b64decode(endpoint.secret.removeprefix("whsec_"))
    signed = f"{event.id}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert json.loads(body) == {
        "type": "decision.created",
        "timestamp": event.created_at.isoformat(),
        "data": {"decision_id": "dec_1"},
    }


def test_failed_delivery_is_retried_with_backoff_then_succeeds(tenant):
    with WebhookReceiver() as receiver:
        receiver.statuses = [500, 503]
        WebhookEndpoint.objects.create(tenant=tenant, url=receiver.url)
        _enqueue(tenant)
        dispatch_events()
        assert deliver_due()["retry"] == 1
        assert deliver_due() == {"delivered": 0, "retry": 0, "dead": 0}  # backing off: not due
        _make_due()
        assert deliver_due()["retry"] == 1
        _make_due()
        assert deliver_due()["delivered"] == 1
        ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1  # same id: receivers can de-duplicate
    delivery = OutboxDelivery.objects.get()
    assert delivery.state == "delivered" and delivery.attempts == 3


def test_unreachable_endpoint_goes_dead_after_max_attempts(tenant):
    WebhookEndpoint.objects.create(tenant=tenant, url="http://127.0.0.1:1/hooks")
    _enqueue(tenant)
    dispatch_events()
    for _ in range(MAX_ATTEMPTS):
        _make_due()
        deliver_due()
    delivery = OutboxDelivery.objects.get()
    assert delivery.state == "dead" and delivery.attempts == MAX_ATTEMPTS
    assert "ConnectError" in delivery.last_error


def test_endpoints_only_get_their_tenants_subscribed_events(tenant, other_tenant):
    with WebhookReceiver() as receiver:
        WebhookEndpoint.objects.create(tenant=tenant, url=receiver.url, event_types=["a"])
        WebhookEndpoint.objects.create(tenant=other_tenant, url=receiver.url)
        _enqueue(tenant, "a")
        _enqueue(tenant, "b")
        dispatch_events()
        deliver_due()
        assert [json.loads(body)["type"] for _, body in receiver.requests] == ["a"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_the_same_delivery_twice(tenant):
    with WebhookReceiver() as receiver:
        WebhookEndpoint.objects.create(tenant=tenant, url=receiver.url)
        for i in range(30):
            _enqueue(tenant, payload={"i": i})
        dispatch_events()
        barrier = threading.Barrier(2)

        def worker():
            from django.db import connection

            barrier.wait()
            try:
                while deliver_due(batch=5)["delivered"]:
                    pass
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = [headers["webhook-id"] for headers, _ in receiver.requests]
    assert len(ids) == 30 and len(set(ids)) == 30
