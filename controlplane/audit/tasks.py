"""Periodic ledger work."""

from celery import shared_task

from controlplane.audit.services import checkpoint_create


@shared_task(name="audit.ledger_checkpoint_task")
def ledger_checkpoint_task() -> str:
    """Sign the current chain heads; safe to run on several workers (each writes its own row)."""
    return checkpoint_create().id


@shared_task(name="audit.ledger_verify_task")
def ledger_verify_task() -> bool:
    """Verify every chain and checkpoint and record the result (shown in the admin)."""
    from controlplane.audit.services import ledger_verify_record

    return ledger_verify_record(trigger="task").ok


@shared_task(name="audit.ledger_verify_run_task")
def ledger_verify_run_task(verification_id: str) -> bool:
    """Run one queued verification (``POST /api/v1/ledger/verify``); safe to deliver twice."""
    from controlplane.audit.services import ledger_verify_run

    return ledger_verify_run(verification_id=verification_id)


@shared_task(name="audit.outbox_deliver_task")
def outbox_deliver_task() -> dict:
    """Fan out new events and send due webhooks; several workers may run it at once."""
    from controlplane.audit.outbox import deliver_due, dispatch_events

    for _ in range(20):  # bounded: a flood is finished by the next beat tick
        if not dispatch_events():
            break
    return deliver_due()
