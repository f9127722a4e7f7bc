"""Dunning: retry an unpaid invoice on a schedule, then suspend, then cancel.

A campaign per unpaid invoice runs ``DUNNING_SCHEDULE_DAYS`` (e.g. day 0/3/5/7 after the first
failure): one ``DunningAttempt`` row per retry, each retry run by ``dunning_attempt_task``.
When every retry failed and ``DUNNING_FINAL_WAIT_DAYS`` passed, the subscription is suspended
(past_due -> suspended); ``DUNNING_CANCEL_AFTER_DAYS`` later it is canceled (and canceled at the
provider). A payment at any point closes the campaign and resumes the subscription.

Safe with any number of workers and beat schedulers: a step claims its campaign with
``FOR UPDATE SKIP LOCKED``, the next step's time moves forward in the same transaction, and
UNIQUE(campaign, number) stops a second attempt row for one step.

A step's task is enqueued *before* its transaction commits, while the campaign row is locked:
if the broker refuses it, the transaction rolls back, so the attempt row, the state transition,
its ledger entry and its notice are all undone and the next tick tries again. The tasks take
the same locks first, so they wait for the commit, and a task whose step was rolled back finds
nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import transaction
from kombu.exceptions import KombuError
from prometheus_client import Counter

from billing.models import DunningAttempt, DunningCampaign, Invoice, Subscription
from controlplane.audit.outbox import outbox_enqueue
from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now

log = structlog.get_logger(__name__)

DUNNING_STEPS = Counter(
    "dunning_steps_total", "Dunning steps taken, by kind (attempt, suspend, cancel).", ["kind"]
)
DUNNING_ENQUEUE_FAILURES = Counter(
    "dunning_enqueue_failures_total", "Dunning steps rolled back because the broker refused."
)
DUNNING_ATTEMPTS = Counter(
    "dunning_attempts_total", "Dunning payment retries by result.", ["result"]
)
Campaign = DunningCampaign
State = Subscription.State


def _ledger(campaign: DunningCampaign, kind: str, **payload) -> None:
    ledger_append_control(
        tenant_id=campaign.tenant_id,
        kind=f"billing.dunning.{kind}",
        payload={"campaign": campaign.id, "invoice": campaign.invoice_id, **payload},
    )


def _notice(campaign: DunningCampaign, kind: str, **payload) -> None:
    outbox_enqueue(
        tenant_id=campaign.tenant_id,
        event_type=f"dunning.{kind}",
        payload={
            "campaign_id": campaign.id,
            "invoice": campaign.invoice.provider_invoice_id,
            "amount_due_micros": campaign.invoice.amount_due_micros,
            **payload,
        },
    )


def dunning_start(*, invoice: Invoice) -> DunningCampaign:
    """The campaign of an unpaid invoice (created once; later failures reuse it)."""
    existing = DunningCampaign.objects.filter(invoice=invoice).first()
    if existing is not None:
        return existing
    schedule = sorted(set(settings.DUNNING_SCHEDULE_DAYS)) or [0]
    now = db_now()
    campaign = DunningCampaign.objects.create(
        tenant_id=invoice.tenant_id,
        subscription_id=invoice.subscription_id,
        invoice=invoice,
        schedule_days=schedule,
        max_attempts=len(schedule),
        started_at=now,
        next_action_at=now + timedelta(days=schedule[0]),
    )
    _ledger(campaign, "started", schedule_days=schedule)
    _notice(campaign, "started", schedule_days=schedule)
    return campaign


def _close(campaign: DunningCampaign, state: str, reason: str) -> None:
    campaign.state = state
    campaign.closed_at = db_now()
    campaign.next_action_at = None
    campaign.save(update_fields=["state", "closed_at", "next_action_at", "updated_at"])
    _ledger(campaign, "closed", state=state, reason=reason)


def dunning_close_for(*, subscription: Subscription, recovered: bool, reason: str) -> None:
    """Close the subscription's active campaigns (it was paid up, or it ended)."""
    state = Campaign.State.RECOVERED if recovered else Campaign.State.CLOSED
    for campaign in Campaign.objects.select_for_update().filter(
        subscription=subscription, state=Campaign.State.ACTIVE
    ):
        _close(campaign, state, reason)


def dunning_close_for_invoice(*, invoice: Invoice, recovered: bool) -> None:
    campaign = (
        Campaign.objects.select_for_update()
        .filter(invoice=invoice, state=Campaign.State.ACTIVE)
        .first()
    )
    if campaign is not None:
        _close(
            campaign,
            Campaign.State.RECOVERED if recovered else Campaign.State.CLOSED,
            f"invoice_{invoice.status}",
        )


# --- the beat tick -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    campaign_id: str
    kind: str  # attempt | suspend | cancel | skipped
    attempt_id: str | None = None


def dunning_tick(*, limit: int = 100) -> list[Step]:
    """Take every due step (up to ``limit``), one transaction each; safe to run concurrently."""
    steps: list[Step] = []
    for _ in range(limit):
        try:
            step = _take_one_step()
        except (KombuError, OSError) as exc:
            # The broker refused the step's task: its transaction rolled back whole.
            DUNNING_ENQUEUE_FAILURES.inc()
            log.error("dunning_step_rolled_back", error=f"{type(exc).__name__}: {exc}")
            break
        if step is None:
            break
        steps.append(step)
    return steps


def _take_one_step() -> Step | None:
    with transaction.atomic():
        now = db_now()
        campaign = (
            Campaign.objects.select_for_update(skip_locked=True)
            .select_related("invoice")
            .filter(state=Campaign.State.ACTIVE, next_action_at__lte=now)
            .order_by("next_action_at", "id")
            .first()
        )
        if campaign is None:
            return None
        # Payment processing locks the subscription before its campaigns; never wait for it
        # here (that order would deadlock): skip, the next tick comes back.
        subscription = (
            Subscription.objects.select_for_update(skip_locked=True)
            .filter(pk=campaign.subscription_id)
            .first()
        )
        if subscription is None:
            campaign.next_action_at = now + timedelta(seconds=settings.DUNNING_TICK_SECONDS)
            campaign.save(update_fields=["next_action_at", "updated_at"])
            return Step(campaign.id, "skipped")
        if campaign.stage == Campaign.Stage.RETRYING:
            if campaign.attempts_made < campaign.max_attempts:
                return _attempt(campaign, now)
            return _suspend(campaign, subscription, now)
        return _cancel(campaign, subscription, now)


def _attempt(campaign: DunningCampaign, now) -> Step:
    from billing.tasks import dunning_attempt_task

    number = campaign.attempts_made + 1
    attempt = DunningAttempt.objects.create(
        campaign=campaign, number=number, scheduled_for=campaign.next_action_at
    )
    campaign.attempts_made = number
    if number < campaign.max_attempts:
        due = campaign.started_at + timedelta(days=campaign.schedule_days[number])
        campaign.next_action_at = max(due, now)
    else:
        campaign.next_action_at = now + timedelta(days=settings.DUNNING_FINAL_WAIT_DAYS)
    campaign.save(update_fields=["attempts_made", "next_action_at", "updated_at"])
    _ledger(campaign, "attempt", number=number, attempt=attempt.id)
    _notice(
        campaign,
        "attempt",
        number=number,
        of=campaign.max_attempts,
        next_action_at=campaign.next_action_at.isoformat(),
    )
    _enqueue(dunning_attempt_task, campaign.subscription_id, campaign.id, attempt.id)
    DUNNING_STEPS.labels(kind="attempt").inc()
    return Step(campaign.id, "attempt", attempt.id)


def _suspend(campaign: DunningCampaign, subscription: Subscription, now) -> Step:
    from billing.services.subscriptions import subscription_transition

    if subscription.state == State.PAST_DUE:
        subscription_transition(
            subscription_id=subscription.id,
            to=State.SUSPENDED,
            reason="dunning_exhausted",
            actor=f"dunning:{campaign.id}",
        )
    campaign.stage = Campaign.Stage.SUSPENDED
    campaign.next_action_at = now + timedelta(days=settings.DUNNING_CANCEL_AFTER_DAYS)
    campaign.save(update_fields=["stage", "next_action_at", "updated_at"])
    _ledger(campaign, "suspended", cancel_at=campaign.next_action_at.isoformat())
    DUNNING_STEPS.labels(kind="suspend").inc()
    return Step(campaign.id, "suspend")


def _cancel(campaign: DunningCampaign, subscription: Subscription, now) -> Step:
    from billing.services.subscriptions import subscription_transition
    from billing.tasks import provider_subscription_cancel_task

    _close(campaign, Campaign.State.EXHAUSTED, "unpaid after every retry")
    if subscription.state in (State.PAST_DUE, State.SUSPENDED):
        subscription_transition(
            subscription_id=subscription.id,
            to=State.CANCELED,
            reason="dunning_exhausted",
            actor=f"dunning:{campaign.id}",
        )
        _enqueue(provider_subscription_cancel_task, subscription.id)
    DUNNING_STEPS.labels(kind="cancel").inc()
    return Step(campaign.id, "cancel")


def _enqueue(task, *args) -> None:
    """Send now, inside the open transaction: a refusal raises and rolls the step back."""
    task.apply_async(args=list(args), retry=False)


# --- a retry, run by a worker ------------------------------------------------------------------


def dunning_attempt_run(*, subscription_id: str, campaign_id: str, attempt_id: str) -> str:
    """Claim the attempt, ask the provider to collect, record the result (idempotent)."""
    from billing.payments.registry import provider as payment_provider

    # Lock order as payment processing: subscription, then campaign. Waiting here also waits
    # for the tick that enqueued us to commit.
    with transaction.atomic():
        Subscription.objects.select_for_update().filter(pk=subscription_id).first()
        campaign = (
            Campaign.objects.select_for_update()
            .select_related("invoice", "subscription")
            .filter(pk=campaign_id)
            .first()
        )
        attempt = DunningAttempt.objects.select_for_update().filter(pk=attempt_id).first()
        if campaign is None or attempt is None or attempt.state != DunningAttempt.State.ENQUEUED:
            return "nothing to do"
        if campaign.state != Campaign.State.ACTIVE:
            _finish(attempt, DunningAttempt.State.FAILED, f"campaign {campaign.state}")
            return "campaign closed"
        attempt.state = DunningAttempt.State.RUNNING
        attempt.save(update_fields=["state"])
        provider_name = campaign.subscription.provider
        invoice_ref = campaign.invoice.provider_invoice_id
    adapter = payment_provider(provider_name)
    if adapter is None:
        result_paid, detail = False, f"no payment provider {provider_name!r}: reminder only"
    else:
        result = adapter.retry_invoice(invoice_ref)
        result_paid, detail = result.paid, result.detail
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
        campaign = (
            Campaign.objects.select_for_update().select_related("invoice").get(pk=campaign_id)
        )
        attempt = DunningAttempt.objects.select_for_update().get(pk=attempt_id)
        _finish(
            attempt,
            DunningAttempt.State.SUCCEEDED if result_paid else DunningAttempt.State.FAILED,
            detail,
        )
        _ledger(campaign, "attempt_result", number=attempt.number, paid=result_paid, detail=detail)
        if result_paid:
            from billing.services.payments import invoice_settled

            invoice = Invoice.objects.select_for_update().get(pk=campaign.invoice_id)
            if invoice.status == Invoice.Status.OPEN:
                invoice.status = Invoice.Status.PAID
                invoice.status_at = db_now()
                invoice.save(update_fields=["status", "status_at", "updated_at"])
            invoice_settled(invoice=invoice, subscription=subscription, event=None)
    DUNNING_ATTEMPTS.labels(result="paid" if result_paid else "failed").inc()
    log.info("dunning_attempt", attempt=attempt_id, paid=result_paid, detail=detail)
    return "paid" if result_paid else "failed"


def _finish(attempt: DunningAttempt, state: str, detail: str) -> None:
    attempt.state = state
    attempt.detail = detail[:300]
    attempt.finished_at = db_now()
    attempt.save(update_fields=["state", "detail", "finished_at"])
