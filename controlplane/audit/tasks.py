"""Periodic ledger work."""

from celery import shared_task

from controlplane.audit.services import checkpoint_create


@shared_task(name="audit.ledger_checkpoint_task")
def ledger_checkpoint_task() -> str:
    """Sign the current chain heads; safe to run on several workers (each writes its own row)."""
    return checkpoint_create().id
