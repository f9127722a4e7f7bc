"""Approval workflow: open (from the gate), vote, resolve, cancel, expire.

Ledger: every vote and transition is an entry on the tenant's control chain
(``control:<tenant>``) whose payload names the approval and the decision; money movements caused
by a resolution (releasing the held reservation) are recorded by the reservation services on the
budget period chains, as for any release. Lock order: approval row -> reservation -> budget
periods -> grants -> signing key -> ledger chain heads (the control chain head always last), the
same order the gate uses (periods, then chain heads), so the two never wait on each other in a
cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from controlplane.audit.outbox import outbox_enqueue
from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.money import format_usd
from controlplane.identity.selectors import user_group_names
from controlplane.tenancy.models import Membership, Tenant
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import APPROVAL_TOKENS, APPROVALS_RESOLVED
from enforcement.models import ApprovalRequest, ApprovalVote, Reservation
from enforcement.services.reservations import reservations_release_held
from enforcement.services.tokens import approval_token_retrieve, token_issue

log = structlog.get_logger(__name__)
State = ApprovalRequest.State


def approval_url(approval_id: str) -> str:
    return f"{settings.TOLLGATE_PUBLIC_URL}/api/v1/approvals/{approval_id}"


def approval_summary(approval: ApprovalRequest) -> dict[str, Any]:
    """The ``approval`` object of a gate answer."""
    return {
        "id": approval.id,
        "status": approval.state,
        "required_approvals": approval.required_approvals,
        "url": approval_url(approval.id),
        "expires_at": approval.expires_at.isoformat(),
    }


def approval_replay_summary(*, decision_id: str, api_key) -> dict[str, Any]:
    """The live ``approval`` object for an idempotent replay of a REQUIRE_APPROVAL answer.

    Polling by replaying the same gate call shows the current status; once approved, the API
    key that made the gate call receives the token in ``approval.token`` exactly once.
    """
    approval = ApprovalRequest.objects.get(decision_id=decision_id)
    body = approval_summary(approval)
    if approval.state == State.APPROVED:
        body["token"] = approval_token_retrieve(approval=approval, api_key=api_key)
    return body


# --- open (inside the gate's transaction) -------------------------------------------------------


def approval_build(
    *,
    tenant: Tenant,
    decision,
    reservation: Reservation | None,
    routing: dict,
    requester: str,
    api_key,
    now: datetime,
) -> ApprovalRequest:
    """An unsaved request for a REQUIRE_APPROVAL decision; the hold now lasts as long as it.

    ``routing`` comes from the policy the decision was made under
    (``CompiledPolicy.approval_routing``): the matching rule's approvers, else the default.
    """
    expires_at = now + timedelta(seconds=int(routing["ttl_seconds"]))
    if reservation is not None:
        # The reservation sweep must not release the money while people are still deciding.
        reservation.expires_at = expires_at
    return ApprovalRequest(
        tenant=tenant,
        decision=decision,
        reservation=reservation,
        routing=routing,
        required_approvals=max(int(routing["quorum"]), 1),
        requester=requester or "",
        requester_user=getattr(api_key, "user", None),
        requester_creator_id=getattr(api_key, "created_by_id", None),
        requester_api_key=api_key,
        state=State.PENDING,
        expires_at=expires_at,
        created_at=now,
    )


def approval_open(*, approval: ApprovalRequest) -> ApprovalRequest:
    """Persist a built request with its ledger entry and the ``approval.requested`` event."""
    approval.save(force_insert=True)
    decision = approval.decision
    ledger_append_control(
        tenant_id=approval.tenant_id,
        kind="approval.requested",
        payload={
            "approval": approval.id,
            "decision": decision.id,
            "reservation": approval.reservation_id,
            "amount": decision.amount_micros,
            "routing": approval.routing,
            "required_approvals": approval.required_approvals,
            "requester": approval.requester,
            "expires_at": approval.expires_at.isoformat(),
        },
    )
    outbox_enqueue(
        tenant_id=approval.tenant_id,
        event_type="approval.requested",
        payload={
            "approval_id": approval.id,
            "decision_id": decision.id,
            "reservation_id": approval.reservation_id,
            "project": decision.project.slug,
            "environment": decision.environment,
            "amount_usd": format_usd(decision.amount_micros),
            "requester": approval.requester,
            "required_approvals": approval.required_approvals,
            "approver_roles": approval.routing.get("roles", []),
            "approver_groups": approval.routing.get("groups", []),
            "url": approval_url(approval.id),
            "expires_at": approval.expires_at.isoformat(),
        },
    )
    return approval


# --- authority ----------------------------------------------------------------------------------


def is_requester(approval: ApprovalRequest, user) -> bool:
    """The person who asked: the requesting key's person, the person accountable for that key
    (who created it, or the root of the chain of keys that issued it), or the named requester."""
    if user.pk is not None and user.pk in (
        approval.requester_user_id,
        approval.requester_creator_id,
    ):
        return True
    named = (approval.requester or "").strip().lower()
    identities = {(user.email or "").strip().lower(), (user.get_username() or "").strip().lower()}
    return bool(named) and named in identities - {""}


@dataclass(frozen=True)
class ApproverIdentity:
    """What authority over a tenant's requests depends on, read once per user and tenant."""

    user: Any
    role: str | None  # membership role; None when not an (active) member
    groups: frozenset[str]  # the tenant's approver groups the user belongs to


def approver_identity(*, tenant_id: str, user) -> ApproverIdentity:
    """Two reads whatever the number of requests judged with it afterwards."""
    if user is None or not user.is_active:
        return ApproverIdentity(user=user, role=None, groups=frozenset())
    role = (
        Membership.objects.filter(tenant_id=tenant_id, user_id=user.pk)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        return ApproverIdentity(user=user, role=None, groups=frozenset())
    return ApproverIdentity(
        user=user,
        role=role,
        groups=frozenset(user_group_names(tenant_id=tenant_id, user_id=user.pk)),
    )


def authority_problem(
    approval: ApprovalRequest, identity: ApproverIdentity
) -> TollgateError | None:
    """Why this identity may not vote on this request (None when it may). No database access."""
    routing = approval.routing or {}
    roles = list(routing.get("roles") or [])
    groups = list(routing.get("groups") or [])
    if identity.role is None:
        return TollgateError(
            EnforcementErrorCode.APPROVER_NOT_AUTHORIZED,
            "You are not a member of this tenant.",
            remediation="Ask a tenant owner to add you as a member.",
            status=403,
        )
    if identity.role not in roles and not identity.groups.intersection(groups):
        return TollgateError(
            EnforcementErrorCode.APPROVER_NOT_AUTHORIZED,
            f"The routing of this request names roles {roles} and approver groups {groups}; "
            f"your role is {identity.role!r} and you are in none of those groups.",
            remediation="Ask someone the routing names, or an owner to add you to an approver group.",
            status=403,
            extra={"routing": {"roles": roles, "groups": groups}},
        )
    if routing.get("separate_from_requester") and is_requester(approval, identity.user):
        return TollgateError(
            EnforcementErrorCode.APPROVER_IS_REQUESTER,
            "You requested this spend; separation of duties requires another approver.",
            remediation="Ask a different approver (two-person rule).",
            status=403,
        )
    return None


def authority_error(approval: ApprovalRequest, user) -> TollgateError | None:
    """Why this user may not vote on this request (None when they may)."""
    return authority_problem(approval, approver_identity(tenant_id=approval.tenant_id, user=user))


def _resolved(approval: ApprovalRequest) -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.APPROVAL_RESOLVED,
        f"Approval {approval.id} is already {approval.state}.",
        remediation="An approval resolves once; gate the request again for a new approval.",
        status=409,
        extra={"status": approval.state},
    )


# --- vote ---------------------------------------------------------------------------------------


@dataclass
class VoteResult:
    approval: ApprovalRequest
    vote: ApprovalVote
    token: str | None  # the approval token, when this vote completed the quorum


def _lock(approval_id: str, tenant_id: str | None) -> ApprovalRequest:
    queryset = ApprovalRequest.objects.select_for_update().filter(pk=approval_id)
    if tenant_id is not None:
        queryset = queryset.filter(tenant_id=tenant_id)
    approval = queryset.first()
    if approval is None:
        raise TollgateError("NOT_FOUND", "No such approval request.", status=404)
    return approval


def _finish(
    approval: ApprovalRequest, state: str, now: datetime, *, release_reason: str | None
) -> list[str]:
    approval.state = state
    approval.resolved_at = now
    approval.save(update_fields=["state", "resolved_at", "updated_at"])
    if release_reason and approval.reservation_id:
        return reservations_release_held(
            reservation_ids=[approval.reservation_id], reason=release_reason
        )
    return []


def _resolved_event(approval: ApprovalRequest, **extra) -> None:
    outbox_enqueue(
        tenant_id=approval.tenant_id,
        event_type="approval.resolved",
        payload={
            "approval_id": approval.id,
            "decision_id": approval.decision_id,
            "reservation_id": approval.reservation_id,
            "status": approval.state,
            "resolved_at": approval.resolved_at.isoformat(),
            **extra,
        },
    )


def approval_vote(
    *,
    approval_id: str,
    tenant_id: str,
    user,
    vote: str,
    comment: str = "",
    via: str = "api",
) -> VoteResult:
    """One approver's vote; a deny ends it, the N-th distinct approve approves and issues a token."""
    if vote not in ApprovalVote.Vote.values:
        raise TollgateError("VALIDATION_FAILED", "vote must be approve or deny.")
    with transaction.atomic():
        # The voter's user row first: deprovisioning (SCIM) takes it before withdrawing votes,
        # so a vote either lands before and is withdrawn, or waits and finds no membership.
        voter = get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk)
        list(voter.values_list("pk"))
        approval = _lock(approval_id, tenant_id)
        now = db_now()
        if approval.state != State.PENDING:
            raise _resolved(approval)
        if approval.expires_at <= now:
            raise TollgateError(
                EnforcementErrorCode.APPROVAL_EXPIRED,
                f"Approval {approval.id} expired at {approval.expires_at.isoformat()}.",
                remediation="Gate the request again to ask for a new approval.",
                status=409,
            )
        error = authority_error(approval, user)
        if error is not None:
            raise error
        reservation = approval.reservation
        if reservation is not None and reservation.state != Reservation.State.PENDING:
            # The hold went away underneath (released by hand): nothing is left to approve.
            _cancel_in_tx(approval, now, reason=f"reservation {reservation.state}")
            result = None
        else:
            result = _cast(approval, reservation, user, vote, comment, via, now)
    if result is None:
        APPROVALS_RESOLVED.labels(state=State.CANCELLED).inc()
        raise _resolved(approval)  # after the commit, so the cancellation stays recorded
    if approval.state != State.PENDING:
        APPROVALS_RESOLVED.labels(state=approval.state).inc()
    if result.token:
        APPROVAL_TOKENS.labels(event="issued").inc()
    log.info("approval_vote", approval=approval.id, vote=vote, state=approval.state)
    return result


def _cast(approval, reservation, user, vote, comment, via, now) -> VoteResult:
    try:
        with transaction.atomic():
            ballot = ApprovalVote.objects.create(
                request=approval,
                user=user,
                vote=vote,
                comment=comment or "",
                via=via,
                created_at=now,
            )
    except IntegrityError as exc:
        raise TollgateError(
            EnforcementErrorCode.APPROVAL_ALREADY_VOTED,
            "You already voted on this request; a second vote would not count.",
            remediation="Quorum needs distinct approvers: ask another approver.",
            status=409,
        ) from exc
    approvals = approval.votes.filter(vote=ApprovalVote.Vote.APPROVE).count()
    token = None
    record = None
    if vote == ApprovalVote.Vote.DENY:
        _finish(approval, State.DENIED, now, release_reason="approval_denied")
    elif approvals >= approval.required_approvals:
        _finish(approval, State.APPROVED, now, release_reason=None)
        record, token = token_issue(approval=approval, now=now)
        if reservation is not None:
            # Keep the money held until the token can no longer be used.
            Reservation.objects.filter(pk=reservation.pk).update(
                expires_at=max(reservation.expires_at, record.expires_at)
            )
    # The control chain head is locked last (after any period locks), as on the gate path.
    ledger_append_control(
        tenant_id=approval.tenant_id,
        kind="approval.voted",
        payload={
            "approval": approval.id,
            "decision": approval.decision_id,
            "vote": ballot.id,
            "user": user.pk,
            "value": vote,
            "approvals": approvals,
            "required": approval.required_approvals,
        },
    )
    if approval.state != State.PENDING:
        ledger_append_control(
            tenant_id=approval.tenant_id,
            kind=f"approval.{approval.state}",
            payload={
                "approval": approval.id,
                "decision": approval.decision_id,
                "reservation": approval.reservation_id,
                "token_jti": record.jti if record else None,
                "token_kid": record.signing_key_id if record else None,
            },
        )
        _resolved_event(
            approval, token_expires_at=record.expires_at.isoformat() if record else None
        )
    return VoteResult(approval=approval, vote=ballot, token=token)


def approval_votes_withdraw(*, tenant_id: str, user_id, reason: str) -> dict[str, Any]:
    """Withdraw a person's votes on the tenant's pending requests, inside the caller's
    transaction (which holds the person's user row, so no vote of theirs lands meanwhile).

    Each request is counted again: it stays pending with the approvals left and needs others
    to reach its quorum; the ledger and an ``approval.vote_withdrawn`` event say so.
    """
    approvals = list(
        ApprovalRequest.objects.select_for_update()
        .filter(
            tenant_id=tenant_id,
            state=State.PENDING,
            pk__in=ApprovalVote.objects.filter(user_id=user_id).values("request_id"),
        )
        .order_by("pk")
    )
    withdrawn = []
    for approval in approvals:
        for ballot in list(approval.votes.filter(user_id=user_id)):
            ballot.delete()
            left = approval.votes.filter(vote=ApprovalVote.Vote.APPROVE).count()
            ledger_append_control(
                tenant_id=tenant_id,
                kind="approval.vote_withdrawn",
                payload={
                    "approval": approval.id,
                    "decision": approval.decision_id,
                    "vote": ballot.id,
                    "user": user_id,
                    "value": ballot.vote,
                    "reason": reason,
                    "approvals": left,
                    "required": approval.required_approvals,
                },
            )
            outbox_enqueue(
                tenant_id=tenant_id,
                event_type="approval.vote_withdrawn",
                payload={
                    "approval_id": approval.id,
                    "decision_id": approval.decision_id,
                    "approvals": left,
                    "required_approvals": approval.required_approvals,
                    "reason": reason,
                    "url": approval_url(approval.id),
                },
            )
            withdrawn.append(ballot.id)
    if withdrawn:
        log.info("approval_votes_withdrawn", tenant=tenant_id, count=len(withdrawn))
    return {"votes_withdrawn": withdrawn, "approvals_recounted": [a.id for a in approvals]}


def _cancel_in_tx(
    approval: ApprovalRequest, now: datetime, *, reason: str, release: bool = True
) -> list[str]:
    released = _finish(
        approval, State.CANCELLED, now, release_reason="approval_cancelled" if release else None
    )
    ledger_append_control(
        tenant_id=approval.tenant_id,
        kind="approval.cancelled",
        payload={
            "approval": approval.id,
            "decision": approval.decision_id,
            "reason": reason,
            "released": released,
        },
    )
    _resolved_event(approval, reason=reason)
    return released


def approval_close_committed(*, approval: ApprovalRequest, now: datetime) -> None:
    """The held reservation was committed while the request was open (caller holds the row lock
    and is committing): close the request as cancelled without releasing anything."""
    _cancel_in_tx(approval, now, reason="committed before approval", release=False)


def approval_cancel(
    *, approval_id: str, reason: str, tenant_id: str | None = None
) -> ApprovalRequest:
    """Withdraw a pending request and give its held money back."""
    with transaction.atomic():
        approval = _lock(approval_id, tenant_id)
        if approval.state != State.PENDING:
            raise _resolved(approval)
        _cancel_in_tx(approval, db_now(), reason=reason)
    APPROVALS_RESOLVED.labels(state=State.CANCELLED).inc()
    return approval


def approvals_expire(*, batch: int = 100) -> int:
    """Expire one batch of overdue pending requests, oldest first, releasing their holds.

    ``FOR UPDATE SKIP LOCKED``: several workers take disjoint batches; a request being voted on
    right now is skipped and picked up by a later sweep if still overdue.
    """
    with transaction.atomic():
        now = db_now()
        due = list(
            ApprovalRequest.objects.select_for_update(skip_locked=True)
            .filter(state=State.PENDING, expires_at__lt=now)
            .order_by("expires_at", "id")[:batch]
        )
        if not due:
            return 0
        released = set(
            reservations_release_held(
                reservation_ids=[a.reservation_id for a in due if a.reservation_id],
                reason="approval_expired",
            )
        )
        ApprovalRequest.objects.filter(pk__in=[a.pk for a in due]).update(
            state=State.EXPIRED, resolved_at=now, updated_at=now
        )
        for approval in due:
            approval.state = State.EXPIRED
            approval.resolved_at = now
            ledger_append_control(
                tenant_id=approval.tenant_id,
                kind="approval.expired",
                payload={
                    "approval": approval.id,
                    "decision": approval.decision_id,
                    "reservation": approval.reservation_id,
                    "released": approval.reservation_id in released,
                },
            )
            _resolved_event(approval)
    APPROVALS_RESOLVED.labels(state=State.EXPIRED).inc(len(due))
    log.info("approvals_expired", count=len(due))
    return len(due)
