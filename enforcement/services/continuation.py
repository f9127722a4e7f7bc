"""Spending an approval: one-time token consumption and the gate continuation.

One-time use is the database's job: the consuming transaction claims the token with
``UPDATE ... SET consumed_at = now() WHERE jti = %s AND consumed_at IS NULL``; of any number of
concurrent consumers exactly one sees one updated row, the others see zero (after the winner
commits) and get 409 ``TOKEN_ALREADY_CONSUMED``. Consuming turns the reservation the approval
held into an allowed one: it stays ``pending`` (ready to be committed) with a fresh TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction

from controlplane.audit.outbox import outbox_enqueue
from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.money import format_usd
from controlplane.tenancy.models import Tenant
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import APPROVAL_TOKENS
from enforcement.models import ApprovalToken, Decision, Reservation
from enforcement.services.approvals import approval_summary
from enforcement.services.gate.answer import answer_replay, gate_answer
from enforcement.services.gate.request import key_binding_check, ttl_checked
from enforcement.services.policies import active_policy
from enforcement.services.tokens import token_verify

APPROVED_REASON = "APPROVED"


@dataclass
class Consumed:
    record: ApprovalToken
    claims: dict[str, Any]
    reservation: Reservation | None


def _already_consumed(record: ApprovalToken) -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.TOKEN_ALREADY_CONSUMED,
        f"Approval token {record.jti} was already used at {record.consumed_at.isoformat()}.",
        remediation="An approval token is single-use: gate the request again for a new approval.",
        status=409,
        extra={
            "jti": record.jti,
            "consumed_by_decision": record.consumed_by_decision_id,
        },
    )


def _claim(record: ApprovalToken, *, via: str, ttl_seconds: int) -> Reservation | None:
    """Inside a transaction: take the token (once) and re-arm the held reservation."""
    now = db_now()
    taken = ApprovalToken.objects.filter(jti=record.jti, consumed_at__isnull=True).update(
        consumed_at=now, consumed_via=via
    )
    if taken != 1:
        record.refresh_from_db()
        raise _already_consumed(record)
    reservation = (
        Reservation.objects.select_for_update()
        .filter(decision_id=record.claims["decision_id"])
        .first()
    )
    if reservation is not None:
        if reservation.state != Reservation.State.PENDING:
            raise TollgateError(
                EnforcementErrorCode.RESERVATION_RESOLVED,
                f"The reservation {reservation.id} this approval held is {reservation.state}.",
                remediation="Gate the request again; the token was not consumed.",
                status=409,
            )
        reservation.expires_at = now + timedelta(seconds=ttl_seconds)
        reservation.save(update_fields=["expires_at"])
    record.consumed_at = now
    record.consumed_via = via
    return reservation


def _ledger_consumed(record: ApprovalToken, reservation, decision_id: str | None) -> None:
    ledger_append_control(
        tenant_id=record.tenant_id,
        kind="approval.token_consumed",
        payload={
            "jti": record.jti,
            "approval": record.request_id,
            "decision": record.claims["decision_id"],
            "continuation_decision": decision_id,
            "reservation": reservation.id if reservation else None,
            "via": record.consumed_via,
        },
    )


def approval_token_consume(
    *,
    tenant: Tenant,
    token: str,
    expected_project: str,
    expected_fingerprint: str,
    expected_environment: str | None = None,
    cost_micros: int | None = None,
    ttl_seconds: int | None = None,
    api_key=None,
) -> Consumed:
    """Verify and consume a token for an external caller (``/approval-tokens/consume``).

    A bound ``api_key`` consumes only tokens inside its binding (the token must then be for
    the key's environment even when the caller did not name one); the held reservation gets
    ``ttl_seconds`` (within the policy's bounds, else its default), as the gate's would.
    """
    if api_key is not None:
        key_binding_check(api_key, expected_project, expected_environment)
        expected_environment = expected_environment or api_key.environment or None
    ttl_seconds = ttl_checked(ttl_seconds, active_policy(tenant.id))
    claims, record = token_verify(
        token=token,
        tenant_id=tenant.id,
        now=db_now(),
        expected_project=expected_project,
        expected_environment=expected_environment,
        expected_fingerprint=expected_fingerprint,
        cost_micros=cost_micros,
    )
    with transaction.atomic():
        reservation = _claim(record, via="api", ttl_seconds=ttl_seconds)
        _ledger_consumed(record, reservation, None)
    APPROVAL_TOKENS.labels(event="consumed").inc()
    return Consumed(record=record, claims=claims, reservation=reservation)


def gate_continue(
    *,
    tenant: Tenant,
    token: str,
    source: str,
    idempotency_key: str,
    project,
    environment: str,
    fingerprint: str,
    amount_micros: int,
    ttl_seconds: int,
    request_record: dict,
) -> tuple[dict[str, Any], bool]:
    """A gate call carrying an approval token: (response, created).

    Valid and unused: the token is consumed and a new ALLOW decision (reason APPROVED) is
    recorded that continues the original one and hands over its held reservation (201).
    Already consumed by a gate call with the same idempotency key and fingerprint: that
    answer is replayed (200), so a CI retry is safe. Consumed otherwise: 409.
    """
    claims, record = token_verify(
        token=token,
        tenant_id=tenant.id,
        now=db_now(),
        expected_project=project.slug,
        expected_environment=environment,
        expected_fingerprint=fingerprint,
        cost_micros=amount_micros,
    )
    try:
        with transaction.atomic():
            reservation = _claim(record, via="gate", ttl_seconds=ttl_seconds)
            response = _continue(
                record, claims, reservation, source, idempotency_key, request_record
            )
        APPROVAL_TOKENS.labels(event="consumed").inc()
        return response, True
    except TollgateError as exc:
        if exc.code != EnforcementErrorCode.TOKEN_ALREADY_CONSUMED:
            raise
        prior = (
            Decision.objects.filter(pk=record.consumed_by_decision_id).first()
            if record.consumed_by_decision_id
            else None
        )
        if (
            prior is None
            or prior.fingerprint != fingerprint
            or prior.request.get("idempotency_key") != idempotency_key
        ):
            raise
        APPROVAL_TOKENS.labels(event="replayed").inc()
        return answer_replay(prior), False


def _continue(record, claims, reservation, source, idempotency_key, request_record) -> dict:
    original = Decision.objects.select_related("project").get(pk=claims["decision_id"])
    now = db_now()
    decision = Decision(
        tenant_id=original.tenant_id,
        source=source,
        # One continuation per approval, enforced by the decision idempotency constraint.
        idempotency_key=f"approval:{record.request_id}",
        fingerprint=original.fingerprint,
        project=original.project,
        environment=original.environment,
        outcome="ALLOW",
        evaluated_outcome="ALLOW",
        mode=original.mode,
        enforced=True,
        reason_code=APPROVED_REASON,
        amount_micros=original.amount_micros,
        request={**request_record, "approval_token_jti": record.jti},
        response={},
        policy_version=original.policy_version,
        policy_sha256=original.policy_sha256,
        created_at=now,
    )
    reservation_body = None
    if reservation is not None:
        previous = original.response.get("reservation") or {}
        reservation_body = {
            **previous,
            "id": reservation.id,
            "state": reservation.state,
            "expires_at": reservation.expires_at.isoformat(),
        }
    response = gate_answer(
        decision_id=decision.id,
        outcome="ALLOW",
        evaluated_outcome="ALLOW",
        mode=original.mode,
        enforced=True,
        breach=False,
        reason_code=APPROVED_REASON,
        message=f"Approved (approval {record.request_id}); the held reservation is yours "
        "to commit.",
        remediation="",
        fingerprint=original.fingerprint,
        amount_usd=format_usd(original.amount_micros),
        project=original.project.slug,
        environment=original.environment,
        reservation=reservation_body,
        approval={
            **approval_summary(record.request),
            "token_jti": record.jti,
        },
        waterfall=original.response.get("waterfall") or [],
        context=original.response.get("context"),
        policy=original.response.get("policy") or {},
        created_at=now.isoformat(),
        continues_decision_id=original.id,
    )
    decision.response = response
    try:
        with transaction.atomic():
            decision.save(force_insert=True)
    except IntegrityError as exc:
        # A decision recorded before ``approval:`` keys were reserved for continuations holds
        # this key: refuse (the token stays unused) rather than fail the whole call.
        raise TollgateError(
            EnforcementErrorCode.IDEMPOTENCY_KEY_REUSED,
            f"The idempotency key {decision.idempotency_key!r} of this approval's continuation "
            f"is already used by another {source!r} decision.",
            remediation="Gate the request again from another source to ask for a new approval.",
            status=409,
        ) from exc
    ApprovalToken.objects.filter(pk=record.pk).update(consumed_by_decision=decision)
    record.consumed_by_decision = decision
    _ledger_consumed(record, reservation, decision.id)
    outbox_enqueue(
        tenant_id=decision.tenant_id,
        event_type="decision.created",
        payload={"decision_id": decision.id},  # data built at delivery (decision_event_data)
    )
    return response
