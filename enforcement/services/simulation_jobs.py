"""Policy simulation as a background job: create (validated, in the request), run (a worker).

The request validates the candidate policy (every CEL limit) and the window, stores a ``queued``
job and enqueues ``enforcement.policy_simulate_task`` after commit. The worker claims the job
with a conditional UPDATE (so a redelivered task never runs it twice; a ``running`` job whose
worker stopped sending progress for STALE_SECONDS is taken over), replays at most
``max_decisions`` decisions page by page, records progress after each page, and stores the
report or the error. Nothing else is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from controlplane.core.clock import db_now
from controlplane.core.jobs import enqueue_on_commit
from controlplane.tenancy.models import Project, Tenant
from enforcement.models import Policy, SimulationJob
from enforcement.policy.compiled import CompiledPolicy
from enforcement.services.policies import compiled_for_row, compiled_from_document
from enforcement.services.simulation import check_window, policy_simulate, simulation_count

log = structlog.get_logger(__name__)
STALE_SECONDS = 600
State = SimulationJob.State


def simulation_job_create(
    *,
    tenant: Tenant,
    policy: CompiledPolicy,
    since: datetime,
    until: datetime,
    project: Project | None = None,
    environment: str = "",
    requested_by: str = "",
) -> SimulationJob:
    """Store a queued job for an already validated policy and window; enqueue it after commit."""
    check_window(since, until)
    from enforcement.tasks import policy_simulate_task

    with transaction.atomic():
        job = SimulationJob.objects.create(
            tenant=tenant,
            policy_version=policy.version,
            policy_sha256=policy.sha256,
            document=policy.document if policy.version is None else None,
            since=since,
            until=until,
            project=project,
            environment=environment,
            requested_by=requested_by,
            max_decisions=settings.SIMULATION_MAX_DECISIONS,
            created_at=db_now(),
        )
        enqueue_on_commit(policy_simulate_task, job.id, on_failure=lambda: _queue_failed(job.id))
    return job


def _fail(job_id: str, code: str, message: str) -> None:
    SimulationJob.objects.filter(pk=job_id).update(
        state=State.FAILED, finished_at=db_now(), error={"code": code, "message": message[:500]}
    )


def _queue_failed(job_id: str) -> None:
    _fail(job_id, "QUEUE_UNAVAILABLE", "The job queue is unreachable.")


def _claim(job_id: str) -> bool:
    now = db_now()
    stale = now - timedelta(seconds=STALE_SECONDS)
    return (
        SimulationJob.objects.filter(pk=job_id)
        .filter(Q(state=State.QUEUED) | Q(state=State.RUNNING, heartbeat_at__lt=stale))
        .update(state=State.RUNNING, started_at=now, heartbeat_at=now, processed=0)
        == 1
    )


def _compiled(job: SimulationJob) -> CompiledPolicy:
    if job.document is not None:
        return compiled_from_document(job.document)
    row = Policy.objects.get(tenant_id=job.tenant_id, version=job.policy_version)
    return compiled_for_row(row)


def simulation_job_run(*, job_id: str) -> bool:
    """Run a queued job to its end; False when it is not this worker's to run."""
    if not _claim(job_id):
        return False
    job = SimulationJob.objects.select_related("tenant").get(pk=job_id)
    try:
        policy = _compiled(job)
        total = simulation_count(
            tenant=job.tenant,
            since=job.since,
            until=job.until,
            project_id=job.project_id,
            environment=job.environment,
            limit=job.max_decisions,
        )
        SimulationJob.objects.filter(pk=job_id).update(total=total)

        def progress(processed: int) -> None:
            SimulationJob.objects.filter(pk=job_id).update(
                processed=processed, heartbeat_at=db_now()
            )

        report = policy_simulate(
            tenant=job.tenant,
            policy=policy,
            since=job.since,
            until=job.until,
            project_id=job.project_id,
            environment=job.environment,
            max_decisions=job.max_decisions,
            on_progress=progress,
        )
    except Exception as exc:
        _fail(job_id, "SIMULATION_FAILED", f"{type(exc).__name__}: {exc}")
        log.exception("simulation_failed", job=job_id)
        return True
    SimulationJob.objects.filter(pk=job_id).update(
        state=State.SUCCEEDED,
        finished_at=db_now(),
        processed=report["evaluated"] + report["skipped"],
        result=report,
    )
    log.info("simulation_done", job=job_id, evaluated=report["evaluated"], capped=report["capped"])
    return True
