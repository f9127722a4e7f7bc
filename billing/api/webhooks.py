"""Payment-provider webhooks: verify the signature, store once, apply; exempt from the gates.

``POST /webhooks/billing/stripe`` (``Stripe-Signature``) and ``POST /webhooks/billing/standard``
(Standard Webhooks headers). 200 for a new event and for a replay (``"replay": true``); 400 for
a bad signature or body; 503 when not configured or when storing failed, so the provider
retries (nothing was stored in that case).
"""

from __future__ import annotations

import structlog
from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.errors import BillingErrorCode
from billing.payments.base import WebhookRejected
from billing.payments.registry import provider as payment_provider
from billing.services.payments import payment_event_receive
from controlplane.core.errors import CoreErrorCode
from controlplane.core.problems import problem_response

log = structlog.get_logger(__name__)


@csrf_exempt
@require_POST
def receive(request, provider: str):
    adapter = payment_provider(provider)
    if adapter is None:
        return problem_response(
            request,
            status=404,
            code=CoreErrorCode.NOT_FOUND,
            detail=f"No payment provider {provider!r}.",
            remediation="Use /webhooks/billing/stripe or /webhooks/billing/standard.",
        )
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        event = adapter.parse_webhook(request.body, headers)
    except WebhookRejected as exc:
        not_configured = exc.code == BillingErrorCode.WEBHOOK_NOT_CONFIGURED
        log.warning("payment_webhook_rejected", provider=provider, code=exc.code, detail=exc.detail)
        return problem_response(
            request,
            status=503 if not_configured else 400,
            code=exc.code,
            detail=exc.detail,
            remediation="Set the provider's webhook secret (docs/billing.md#payments)."
            if not_configured
            else "Send the body exactly as signed, with the provider's signature headers.",
            headers={"Retry-After": "60"} if not_configured else None,
        )
    try:
        row, created = payment_event_receive(event=event)
    except DatabaseError as exc:
        log.error("payment_webhook_failed", provider=provider, error=type(exc).__name__)
        return problem_response(
            request,
            status=503,
            code=BillingErrorCode.WEBHOOK_PROCESSING_FAILED,
            detail="The event could not be stored; nothing was applied.",
            remediation="The provider retries; no action needed.",
            headers={"Retry-After": "30"},
        )
    return JsonResponse(
        {
            "received": True,
            "event_id": row.event_id,
            "outcome": row.outcome,
            "detail": row.detail,
            "replay": not created,
        }
    )
