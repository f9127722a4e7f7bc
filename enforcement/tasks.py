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


@shared_task(name="enforcement.approvals_expire_task")
def approvals_expire_task(max_batches: int = 50) -> int:
    """Expire overdue approval requests (releasing their holds) in SKIP LOCKED batches."""
    from enforcement.services.approvals import approvals_expire

    total = 0
    for _ in range(max_batches):
        done = approvals_expire(batch=100)
        total += done
        if done == 0:
            break
    return total


@shared_task(name="enforcement.signing_keys_retire_task")
def signing_keys_retire_task() -> list[str]:
    """Retire retiring signing keys once every token they signed has expired."""
    from enforcement.services.tokens import signing_keys_retire

    return signing_keys_retire()


@shared_task(name="enforcement.budget_alerts_sweep_task")
def budget_alerts_sweep_task() -> int:
    """Fire every threshold/forecast alert due in current periods (level check; idempotent)."""
    from enforcement.services.alerts import budget_alerts_evaluate

    return budget_alerts_evaluate()


@shared_task(name="enforcement.budget_alerts_evaluate_task")
def budget_alerts_evaluate_task(period_ids: list[str]) -> int:
    """Check the given periods right after a commit moved their spend past a threshold."""
    from enforcement.services.alerts import budget_alerts_evaluate

    return budget_alerts_evaluate(period_ids=period_ids)


@shared_task(name="enforcement.policy_simulate_task")
def policy_simulate_task(job_id: str) -> bool:
    """Run one queued policy simulation job (bounded; safe to deliver twice)."""
    from enforcement.services.simulation_jobs import simulation_job_run

    return simulation_job_run(job_id=job_id)


@shared_task(name="enforcement.run_task_evaluate_task")
def run_task_evaluate_task(result_id: str) -> str | None:
    """Evaluate one HCP Terraform run-task request and PATCH its callback (claimed once)."""
    from enforcement.services.run_tasks import run_task_evaluate

    return run_task_evaluate(result_id=result_id)


@shared_task(name="enforcement.llm_commit_abandoned_task")
def llm_commit_abandoned_task() -> int:
    """Commit, as estimated, proxy calls whose proxy died before committing them."""
    from django.conf import settings

    from enforcement.llm.gateway import llm_commit_abandoned

    return llm_commit_abandoned(older_than_seconds=settings.LLM_ABANDONED_AFTER_SECONDS)
