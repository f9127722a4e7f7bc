"""Test helpers for enforcement: one place that knows where gate settings live.

Tests set modes, thresholds and TTL bounds through ``set_gate_settings`` only, so the settings
source (today ``TenantGateSettings``, later the policy document) is changed here alone.
"""

from __future__ import annotations

import uuid

from enforcement.models import Reservation, TenantGateSettings
from enforcement.services.gate import GateRequest, gate_decide


def set_gate_settings(tenant, **fields) -> None:
    """Update the tenant's gate settings (modes, fail_modes, approval_threshold_micros, ...)."""
    TenantGateSettings.objects.update_or_create(tenant=tenant, defaults=fields)


def hard_mode(tenant) -> None:
    set_gate_settings(tenant, modes={"*": {"prod": "hard", "nonprod": "hard"}})


def gate_service(tenant, *, micros: int, project="payments", environment="prod", key=None, **kw):
    """Call the gate service directly (no HTTP); returns the response body."""
    result = gate_decide(
        tenant=tenant,
        api_key=None,
        req=GateRequest(
            source=kw.pop("source", "api"),
            idempotency_key=key or uuid.uuid4().hex,
            project=project,
            environment=environment,
            estimated_micros=micros,
            **kw,
        ),
    )
    return result.response


def reservation_of(body) -> Reservation | None:
    if not body.get("reservation"):
        return None
    return Reservation.objects.get(pk=body["reservation"]["id"])
