"""Actions: request, lease (fencing epoch), complete, fail (retry with backoff), cancel.

A worker leases the oldest ready action with ``FOR UPDATE SKIP LOCKED`` (any number of workers,
each action to one of them); the lease increments the action's epoch. Completing or failing
needs the current epoch: a worker whose lease lapsed and was taken over gets 409
``ACTION_LEASE_LOST`` and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Action

State = Action.State
OPEN = (State.PENDING, State.LEASED)


def action_request(
    *,
    tenant,
    kind: str,
    params: dict[str, Any] | None = None,
    project=None,
    environment: str = "",
    decision=None,
    requested_by: str = "",
    idempotency_key: str | None = None,
    max_attempts: int = 5,
) -> tuple[Action, bool]:
    """(action, created): a request with an idempotency key already used returns that action."""
    if idempotency_key:
        existing = Action.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    now = db_now()
    try:
        with transaction.atomic():
            action = Action.objects.create(
                tenant=tenant,
                kind=kind,
                params=params or {},
                project=project,
                environment=environment,
                decision=decision,
                requested_by=requested_by,
                idempotency_key=idempotency_key or None,
                max_attempts=max_attempts,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            ledger_append_control(
                tenant_id=tenant.id,
                kind="action.requested",
                payload={
                    "action": action.id,
                    "kind": kind,
                    "decision": getattr(decision, "pk", None),
                },
            )
    except IntegrityError:  # a concurrent request with the same key won
        return Action.objects.get(tenant=tenant, idempotency_key=idempotency_key), False
    return action, True


def action_lease(
    *, queryset, worker: str, kinds: list[str] | None = None, lease_seconds: int | None = None
) -> Action | None:
    """Lease the oldest ready action of ``queryset`` (already scoped to the caller), or None.

    Ready: pending and due, or leased with an expired lease (its worker is presumed dead)."""
    seconds = lease_seconds or settings.ACTION_LEASE_SECONDS
    with transaction.atomic():
        now = db_now()
        ready = queryset.filter(state=State.PENDING, next_attempt_at__lte=now) | queryset.filter(
            state=State.LEASED, lease_expires_at__lt=now
        )
        if kinds:
            ready = ready.filter(kind__in=kinds)
        action = (
            ready.select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at", "id")
            .first()
        )
        if action is None:
            return None
        action.state = State.LEASED
        action.epoch += 1
        action.attempts += 1
        action.lease_owner = worker[:200]
        action.lease_expires_at = now + timedelta(seconds=seconds)
        action.updated_at = now
        action.save(
            update_fields=[
                "state",
                "epoch",
                "attempts",
                "lease_owner",
                "lease_expires_at",
                "updated_at",
            ]
        )
    return action


def _locked(action_id: str) -> Action:
    return Action.objects.select_for_update().get(pk=action_id)


def _check_holder(action: Action, epoch: int) -> None:
    if action.state not in OPEN:
        raise TollgateError(
            EnforcementErrorCode.ACTION_RESOLVED,
            f"The action is already {action.state}.",
            status=409,
            extra={"state": action.state, "epoch": action.epoch},
        )
    if action.state != State.LEASED or action.epoch != epoch:
        raise TollgateError(
            EnforcementErrorCode.ACTION_LEASE_LOST,
            f"Epoch {epoch} is not the action's current lease (epoch {action.epoch}, "
            f"{action.state}): another worker took it over.",
            status=409,
            extra={"state": action.state, "epoch": action.epoch},
        )


def _finish(action: Action, state: str, now, kind: str, payload: dict) -> None:
    action.state = state
    action.finished_at = now
    action.updated_at = now
    action.lease_expires_at = None
    action.save()
    ledger_append_control(
        tenant_id=action.tenant_id, kind=kind, payload={"action": action.id, **payload}
    )


def action_complete(*, action_id: str, epoch: int, result: dict | None = None) -> Action:
    with transaction.atomic():
        action = _locked(action_id)
        _check_holder(action, epoch)
        action.result = result or {}
        _finish(action, State.COMPLETED, db_now(), "action.completed", {"epoch": epoch})
    return action


def action_fail(
    *, action_id: str, epoch: int, error: dict | None = None, retry: bool = True
) -> Action:
    """Record a failed attempt: pending again after a backoff, or failed for good."""
    with transaction.atomic():
        action = _locked(action_id)
        _check_holder(action, epoch)
        now = db_now()
        action.last_error = error or {}
        if retry and action.attempts < action.max_attempts:
            delay = settings.ACTION_RETRY_BACKOFF_S * 2 ** (action.attempts - 1)
            action.state = State.PENDING
            action.next_attempt_at = now + timedelta(seconds=delay)
            action.lease_expires_at = None
            action.lease_owner = ""
            action.updated_at = now
            action.save()
        else:
            _finish(action, State.FAILED, now, "action.failed", {"epoch": epoch})
    return action


def action_cancel(*, action_id: str) -> Action:
    """Cancel an open action; a worker holding it loses its lease (the epoch moves on)."""
    with transaction.atomic():
        action = _locked(action_id)
        if action.state not in OPEN:
            raise TollgateError(
                EnforcementErrorCode.ACTION_RESOLVED,
                f"The action is already {action.state}.",
                status=409,
                extra={"state": action.state},
            )
        action.epoch += 1
        _finish(action, State.CANCELLED, db_now(), "action.cancelled", {"epoch": action.epoch})
    return action
