"""Periodic BYOK work."""

from celery import shared_task

from byok.liveness import credentials_probe


@shared_task(name="byok.credentials_probe_task")
def credentials_probe_task() -> dict[str, int]:
    """Re-probe every stored credential (bounded concurrency, per-provider breakers)."""
    return credentials_probe()
