"""Payment webhooks: Stripe bodies signed with the ``stripe`` package, Standard Webhooks bodies
signed with ``standardwebhooks``; stored once, applied in provider-time order."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import stripe
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook

from billing.models import DunningCampaign, Invoice, PaymentEvent, Subscription
from billing.services.subscriptions import subscription_link
from controlplane.audit.chain import control_chain
from controlplane.audit.models import LedgerEntry, OutboxEvent
from tests.api_contracts import assert_problem
from tests.billing.conftest import key_client

pytestmark = pytest.mark.django_db
STRIPE_SECRET = "whsec_test_" + "a" * 32
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STRIPE_URL = "/webhooks/billing/stripe"
STANDARD_URL = "/webhooks/billing/standard"


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    settings.STANDARD_WEBHOOK_SECRET = STANDARD_SECRET


@pytest.fixture
def subscription(tenant):
    return subscription_link(tenant=tenant, provider="stripe", customer_id="cus_acme", actor="t")


def stripe_event(kind: str, *, created: int, obj: dict, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": obj},
    }


def invoice(invoice_id: str = "in_1", *, status: str, customer: str = "cus_acme", metadata=None):
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "amount_due": 4900,
        "amount_paid": 4900 if status == "paid" else 0,
        "currency": "usd",
        "status": status,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1", "metadata": metadata or {}},
        },
    }


def subscription_obj(status: str, *, customer: str = "cus_acme") -> dict:
    return {"id": "sub_1", "object": "subscription", "customer": customer, "status": status}


def post_stripe(client, event: dict, *, secret: str = STRIPE_SECRET, timestamp=None, body=None):
    payload = body if body is not None else json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return client.post(
        STRIPE_URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def post_standard(client, event: dict, *, msg_id: str | None = None, secret=STANDARD_SECRET):
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    payload = json.dumps(event)
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, now, payload)
    return client.post(
        STANDARD_URL,
        data=payload,
        content_type="application/json",
        HTTP_WEBHOOK_ID=msg_id,
        HTTP_WEBHOOK_TIMESTAMP=str(int(now.timestamp())),
        HTTP_WEBHOOK_SIGNATURE=signature,
    )


def control_kinds(tenant) -> list[str]:
    return list(
        LedgerEntry.objects.filter(chain=control_chain(tenant.id)).values_list("kind", flat=True)
    )


# --- Stripe signatures -------------------------------------------------------------------------


def test_wrongly_signed_tampered_stale_or_unsigned_bodies_are_400(client, subscription):
    event = stripe_event(
        "invoice.payment_failed", created=int(time.time()), obj=invoice(status="open")
    )
    assert_problem(
        post_stripe(client, event, secret="whsec_other"), 400, "WEBHOOK_SIGNATURE_INVALID"
    )
    good = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(good, STRIPE_SECRET)
    tampered = good.replace("4900", "1")
    response = client.post(
        STRIPE_URL, data=tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert_problem(response, 400, "WEBHOOK_SIGNATURE_INVALID")
    old = int(time.time()) - 3600
    assert_problem(post_stripe(client, event, timestamp=old), 400, "WEBHOOK_SIGNATURE_INVALID")
    response = client.post(STRIPE_URL, data=good, content_type="application/json")
    assert_problem(response, 400, "WEBHOOK_SIGNATURE_INVALID")
    assert not PaymentEvent.objects.exists()
    subscription.refresh_from_db()
    assert subscription.state == "active"


def test_unconfigured_secret_is_503_so_the_provider_retries(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = post_stripe(
        client, stripe_event("invoice.paid", created=1, obj=invoice(status="paid"))
    )
    assert_problem(response, 503, "WEBHOOK_NOT_CONFIGURED")


def test_signed_body_that_is_not_an_event_is_400(client):
    assert_problem(post_stripe(client, {}, body='{"hello": 1}'), 400, "WEBHOOK_PAYLOAD_INVALID")


# --- Stripe events drive the state machine ----------------------------------------------------


def test_payment_failed_makes_it_past_due_with_ledger_notice_metric_and_dunning(
    client, tenant, subscription, django_capture_on_commit_callbacks
):
    before = (
        REGISTRY.get_sample_value(
            "lifecycle_transitions_total", {"from": "active", "to": "past_due"}
        )
        or 0
    )
    event = stripe_event(
        "invoice.payment_failed", created=int(time.time()), obj=invoice(status="open")
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(client, event)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "received": True,
        "event_id": event["id"],
        "outcome": "applied",
        "detail": "invoice in_1 unpaid; dunning",
        "replay": False,
    }
    subscription.refresh_from_db()
    assert subscription.state == "past_due" and subscription.grace_until is not None
    assert "billing.subscription.transition" in control_kinds(tenant)
    assert OutboxEvent.objects.filter(tenant=tenant, event_type="subscription.past_due").exists()
    assert Invoice.objects.get(provider_invoice_id="in_1").amount_due_micros == 49_000_000
    assert DunningCampaign.objects.get(invoice__provider_invoice_id="in_1").state == "active"
    after = REGISTRY.get_sample_value(
        "lifecycle_transitions_total", {"from": "active", "to": "past_due"}
    )
    assert after == before + 1


def test_a_replayed_event_is_a_no_op(client, tenant, subscription):
    event = stripe_event(
        "invoice.payment_failed", created=int(time.time()), obj=invoice(status="open")
    )
    assert post_stripe(client, event).json()["replay"] is False
    ledger = control_kinds(tenant)
    replay = post_stripe(client, event)
    assert replay.status_code == 200 and replay.json()["replay"] is True
    assert control_kinds(tenant) == ledger
    assert PaymentEvent.objects.filter(event_id=event["id"]).count() == 1


def test_out_of_order_paid_then_older_failure_keeps_it_active(client, subscription):
    now = int(time.time())
    paid = stripe_event("invoice.paid", created=now, obj=invoice(status="paid"))
    failed = stripe_event("invoice.payment_failed", created=now - 60, obj=invoice(status="open"))
    assert post_stripe(client, paid).json()["outcome"] == "applied"
    late = post_stripe(client, failed).json()
    assert late["outcome"] == "stale" and "already paid" in late["detail"]
    subscription.refresh_from_db()
    assert subscription.state == "active"
    assert not DunningCampaign.objects.exists()


def test_subscription_updates_apply_newest_first_and_older_ones_are_stale(client, subscription):
    now = int(time.time())
    unpaid = stripe_event(
        "customer.subscription.updated", created=now, obj=subscription_obj("unpaid")
    )
    older_active = stripe_event(
        "customer.subscription.updated", created=now - 30, obj=subscription_obj("active")
    )
    # unpaid maps to suspended; active -> suspended is not a move, past_due first.
    subscription_past_due = stripe_event(
        "customer.subscription.updated", created=now - 60, obj=subscription_obj("past_due")
    )
    assert post_stripe(client, subscription_past_due).json()["detail"] == "active -> past_due"
    assert post_stripe(client, unpaid).json()["detail"] == "past_due -> suspended"
    assert post_stripe(client, older_active).json()["outcome"] == "stale"
    subscription.refresh_from_db()
    assert subscription.state == "suspended"


def test_paid_invoice_resumes_a_suspended_subscription_and_closes_dunning(
    client, tenant, subscription
):
    now = int(time.time())
    post_stripe(
        client,
        stripe_event("invoice.payment_failed", created=now - 100, obj=invoice(status="open")),
    )
    post_stripe(
        client,
        stripe_event(
            "customer.subscription.updated", created=now - 50, obj=subscription_obj("unpaid")
        ),
    )
    api = key_client(tenant)
    assert_problem(api.get("/api/v1/projects"), 403, "TENANT_SUSPENDED")
    result = post_stripe(
        client, stripe_event("invoice.paid", created=now, obj=invoice(status="paid"))
    )
    assert result.json()["detail"] == "invoice paid; subscription resumed"
    subscription.refresh_from_db()
    assert subscription.state == "active" and subscription.grace_until is None
    assert DunningCampaign.objects.get().state == "recovered"
    assert api.get("/api/v1/projects").status_code == 200


def test_deleted_subscription_is_canceled_and_blocked(client, tenant, subscription):
    event = stripe_event(
        "customer.subscription.deleted", created=int(time.time()), obj=subscription_obj("canceled")
    )
    assert post_stripe(client, event).json()["detail"] == "active -> canceled"
    body = assert_problem(key_client(tenant).get("/api/v1/projects"), 403, "TENANT_SUSPENDED")
    assert body["state"] == "canceled"


def test_unknown_customer_is_linked_through_tenant_metadata_or_reported_unmatched(client, tenant):
    orphan = stripe_event(
        "invoice.payment_failed",
        created=int(time.time()),
        obj=invoice("in_9", status="open", customer="cus_nobody"),
    )
    assert post_stripe(client, orphan).json()["outcome"] == "unmatched"
    linked = stripe_event(
        "invoice.payment_failed",
        created=int(time.time()),
        obj=invoice(
            "in_10", status="open", customer="cus_new", metadata={"tollgate_tenant": tenant.id}
        ),
    )
    assert post_stripe(client, linked).json()["outcome"] == "applied"
    sub = Subscription.objects.get(tenant=tenant)
    assert sub.provider_customer_id == "cus_new" and sub.state == "past_due"


def test_events_we_do_not_act_on_are_stored_and_ignored(client, subscription):
    event = stripe_event(
        "customer.created", created=int(time.time()), obj={"id": "cus_acme", "object": "customer"}
    )
    body = post_stripe(client, event).json()
    assert body["outcome"] == "ignored"
    assert PaymentEvent.objects.get(event_id=event["id"]).event_type == "customer.created"


# --- Standard Webhooks -------------------------------------------------------------------------


def standard_event(kind: str, **data) -> dict:
    return {
        "type": kind,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"customer": "c_1", **data},
    }


@pytest.fixture
def standard_subscription(tenant):
    return subscription_link(tenant=tenant, provider="standard", customer_id="c_1", actor="t")


def test_standard_webhook_drives_the_same_state_machine(client, standard_subscription):
    failed = standard_event(
        "invoice.payment_failed", invoice={"id": "i1", "amount_due": "49.00", "currency": "usd"}
    )
    assert post_standard(client, failed).json()["outcome"] == "applied"
    standard_subscription.refresh_from_db()
    assert standard_subscription.state == "past_due"
    paid = standard_event("invoice.paid", invoice={"id": "i1", "amount_due": "49.00"})
    assert post_standard(client, paid).json()["detail"] == "invoice paid; subscription resumed"


def test_standard_webhook_replay_by_webhook_id_is_a_no_op(client, standard_subscription):
    event = standard_event("subscription.updated", subscription={"id": "s1", "status": "past_due"})
    assert post_standard(client, event, msg_id="msg_fixed").json()["replay"] is False
    assert post_standard(client, event, msg_id="msg_fixed").json()["replay"] is True
    assert PaymentEvent.objects.filter(provider="standard", event_id="msg_fixed").count() == 1


def test_standard_webhook_wrong_or_malformed_signature_is_400(client, standard_subscription):
    event = standard_event("invoice.paid", invoice={"id": "i1", "amount_due": "1"})
    response = post_standard(client, event, secret="whsec_" + "b" * 32)
    assert_problem(response, 400, "WEBHOOK_SIGNATURE_INVALID")
    payload = json.dumps(event)
    response = client.post(
        STANDARD_URL,
        data=payload,
        content_type="application/json",
        HTTP_WEBHOOK_ID="msg_1",
        HTTP_WEBHOOK_TIMESTAMP=str(int(time.time())),
        HTTP_WEBHOOK_SIGNATURE="garbage-without-comma",
    )
    assert_problem(response, 400, "WEBHOOK_SIGNATURE_INVALID")
    assert not PaymentEvent.objects.exists()


def test_standard_webhook_invalid_amount_is_400(client, standard_subscription):
    event = standard_event("invoice.payment_failed", invoice={"id": "i1", "amount_due": "NaN"})
    assert_problem(post_standard(client, event), 400, "WEBHOOK_PAYLOAD_INVALID")


def test_webhooks_pass_the_gates_of_a_blocked_tenant(client, settings, tenant, subscription):
    settings.PROTECTION_GLOBAL_RATE, settings.PROTECTION_GLOBAL_BURST = 0.01, 1
    now = int(time.time())
    for i in range(3):  # past the global rate limit: the webhook path is exempt
        event = stripe_event(
            "customer.subscription.updated", created=now + i, obj=subscription_obj("past_due")
        )
        assert post_stripe(client, event).status_code == 200
