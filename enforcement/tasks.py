"""Periodic enforcement work."""

from celery import shared_task

from enforcement.services.reservations import reservations_expire


@shared_task(name="enforcement.reservations_expire_task")
def reservations_expire_task(max_batches: int = 50) -> int:
    """Expire overdue reservations in SKIP LOCKED batches; any number of workers may run it."""
    total = 0
    for _ in range(max_batches):
        done = reservations_expire(batch=200)
        total += done
        if done == 0:
            break
    return total
