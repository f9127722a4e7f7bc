"""Outbox: enqueue inside the business transaction; fan out and deliver from workers.

Delivery is at-least-once: a delivery is leased (``next_attempt_at`` pushed forward) in a short
transaction with ``FOR UPDATE SKIP LOCKED``, sent without holding any lock, then recorded.
Receivers de-duplicate on the ``webhook-id`` header, which is the event id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import structlog
from django.conf import settings
from django.db import transaction
from prometheus_client import Counter

from controlplane.audit.models import OutboxDelivery, OutboxEvent, WebhookEndpoint
from controlplane.core.clock import db_now

log = structlog.get_logger(__name__)

WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total", "Webhook delivery attempts by result.", ["result"]
)
# Seconds to wait after attempt N fails (the last value repeats until MAX_ATTEMPTS).
BACKOFF_SECONDS = (5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
MAX_ATTEMPTS = 12
LEASE_SECONDS = 60


# event type -> builds the webhook ``data`` from a stored event whose payload only refers to its
# subject (``{"decision_id": ...}``): a higher layer registers it (``enforcement`` for
# ``decision.created``), so the hot path writes a reference, not a copy. The subject is immutable,
# so every delivery attempt of an event sends the same data.
PAYLOAD_BUILDERS: dict[str, Any] = {}


def outbox_register_payload(event_type: str, builder) -> None:
    """Build the delivered ``data`` of ``event_type`` events with ``builder(payload) -> dict``
    (returning None keeps the stored payload as it is)."""
    PAYLOAD_BUILDERS[event_type] = builder


def event_data(event: OutboxEvent) -> dict[str, Any]:
    """What a webhook delivers for this event: the registered builder's data, else the payload."""
    builder = PAYLOAD_BUILDERS.get(event.event_type)
    data = builder(event.payload) if builder is not None else None
    return data if data is not None else event.payload


def outbox_enqueue(*, tenant_id: str, event_type: str, payload: dict[str, Any]) -> OutboxEvent:
    """Record an event in the caller's transaction (one INSERT; fan-out happens in a worker)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_enqueue must run inside the transaction that made the change")
    return OutboxEvent.objects.create(tenant_id=tenant_id, event_type=event_type, payload=payload)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def dispatch_events(*, batch: int = 200) -> int:
    """Create one delivery per subscribed endpoint for undispatched events; returns events done."""
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(dispatched_at__isnull=True)
            .order_by("id")[:batch]
        )
        if not events:
            return 0
        now = db_now()
        tenant_ids = {event.tenant_id for event in events}
        endpoints: dict[str, list[WebhookEndpoint]] = {}
        for endpoint in WebhookEndpoint.objects.filter(tenant_id__in=tenant_ids, active=True):
            endpoints.setdefault(endpoint.tenant_id, []).append(endpoint)
        deliveries = [
            OutboxDelivery(event=event, endpoint=endpoint, next_attempt_at=now)
            for event in events
            for endpoint in endpoints.get(event.tenant_id, [])
            if endpoint.wants(event.event_type)
        ]
        OutboxDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        OutboxEvent.objects.filter(pk__in=[event.pk for event in events]).update(dispatched_at=now)
        return len(events)


def _lease_due(batch: int) -> list[OutboxDelivery]:
    with transaction.atomic():
        now = db_now()
        due = list(
            OutboxDelivery.objects.select_for_update(skip_locked=True)
            .select_related("event", "endpoint")
            .filter(state=OutboxDelivery.State.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:batch]
        )
        if due:
            OutboxDelivery.objects.filter(pk__in=[d.pk for d in due]).update(
                next_attempt_at=now + timedelta(seconds=LEASE_SECONDS)
            )
        return due


def _send(client: httpx.Client, delivery: OutboxDelivery) -> tuple[bool, int | None, str]:
    event = delivery.event
    body = json.dumps(
        {
            "type": event.event_type,
            "timestamp": event.created_at.isoformat(),
            "data": event_data(event),
        },
        separators=(",", ":"),
    ).encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": event.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(delivery.endpoint.secret, event.id, timestamp, body),
        "user-agent": "Tollgate-Webhooks/1",
    }
    try:
        response = client.post(delivery.endpoint.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}"[:300]
    ok = 200 <= response.status_code < 300
    return ok, response.status_code, "" if ok else f"HTTP {response.status_code}"


def deliver_due(*, batch: int = 50) -> dict[str, int]:
    """Send due deliveries once each; returns counts by result."""
    counts = {"delivered": 0, "retry": 0, "dead": 0}
    due = _lease_due(batch)
    if not due:
        return counts
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for delivery in due:
            ok, status, error = _send(client, delivery)
            attempts = delivery.attempts + 1
            with transaction.atomic():
                now = db_now()
                fields: dict[str, Any] = {
                    "attempts": attempts,
                    "last_status": status,
                    "last_error": error,
                }
                if ok:
                    fields.update(state=OutboxDelivery.State.DELIVERED, delivered_at=now)
                    result = "delivered"
                elif attempts >= MAX_ATTEMPTS:
                    fields.update(state=OutboxDelivery.State.DEAD)
                    result = "dead"
                else:
                    wait = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
                    fields.update(next_attempt_at=now + timedelta(seconds=wait))
                    result = "retry"
                OutboxDelivery.objects.filter(pk=delivery.pk).update(**fields)
            counts[result] += 1
            WEBHOOK_DELIVERIES.labels(result=result).inc()
            log.info(
                "webhook_delivery",
                delivery=delivery.id,
                event_id=delivery.event_id,
                result=result,
                status=status,
                attempts=attempts,
            )
    return counts
