"""Queue a Celery task once the current transaction commits, and say so when the queue is down."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from django.db import transaction

from controlplane.core.errors import CoreErrorCode, TollgateError

log = structlog.get_logger(__name__)


def enqueue_on_commit(task, *args, on_failure: Callable[[], None]) -> None:
    """``task.delay(*args)`` after commit; if the broker refuses, run ``on_failure`` (mark the
    job failed) and answer 503, rather than leave a job that no worker will ever run."""

    def send() -> None:
        try:
            task.delay(*args)
        except Exception as exc:
            on_failure()
            log.error("enqueue_failed", task=task.name, error=type(exc).__name__)
            raise TollgateError(
                CoreErrorCode.SERVICE_UNAVAILABLE,
                "The job could not be queued: the job queue is unreachable.",
                remediation="Retry later; operators: check the Celery broker (REDIS_URL).",
                status=503,
                headers={"Retry-After": "30"},
            ) from exc

    transaction.on_commit(send)
