"""Policy simulation as a bounded background job (issue 17 items 2 and 6)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings

from controlplane.core.clock import db_now
from enforcement.models import Decision, SimulationJob
from enforcement.services.simulation_jobs import simulation_job_run
from enforcement.tasks import policy_simulate_task
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.helpers import gate_service, policy_document, simulate

ROOT = Path(__file__).resolve().parents[2]
RULE = {"id": "big", "when": "request.amount_usd > 2.0", "then": "deny"}


@pytest.fixture
def decisions(tenant):
    payments = factories.make_project(tenant, "payments")
    search = factories.make_project(tenant, "search")
    factories.make_budget(tenant, "1000.00")
    made = [gate_service(tenant, micros=m * 1_000_000) for m in (1, 2, 3, 4)]
    made.append(gate_service(tenant, micros=5_000_000, environment="dev"))
    made.append(gate_service(tenant, micros=6_000_000, project="search", environment="dev"))
    return payments, search, made


def _window() -> dict:
    now = db_now()
    return {
        "since": (now - timedelta(hours=1)).isoformat(),
        "until": (now + timedelta(hours=1)).isoformat(),
    }


def _body(**extra) -> dict:
    return {"document": policy_document(rules=[RULE]), **_window(), **extra}


@pytest.mark.django_db
def test_a_job_reports_progress_and_its_result(
    client_a, decisions, django_capture_on_commit_callbacks
):
    job = simulate(client_a, _body(), django_capture_on_commit_callbacks)
    assert job["status"] == "succeeded" and job["started_at"] and job["finished_at"]
    assert job["progress"]["processed"] == job["progress"]["total"] == 6
    result = job["result"]
    assert result["evaluated"] == 6 and result["changed_count"] == 4  # 3, 4, 5 and 6 USD
    assert result["capped"] is False


@pytest.mark.django_db
def test_a_job_stops_at_its_cap(client_a, decisions, django_capture_on_commit_callbacks):
    with override_settings(SIMULATION_MAX_DECISIONS=4):
        job = simulate(client_a, _body(), django_capture_on_commit_callbacks)
    assert job["progress"] == {"processed": 4, "total": 4, "max_decisions": 4, "percent": 100.0}
    assert job["result"]["capped"] is True and job["result"]["evaluated"] == 4


@pytest.mark.django_db
def test_a_job_runs_once_even_when_delivered_twice(
    client_a, decisions, django_capture_on_commit_callbacks
):
    job = simulate(client_a, _body(), django_capture_on_commit_callbacks)
    assert policy_simulate_task(job["id"]) is False
    assert SimulationJob.objects.get(pk=job["id"]).result == job["result"]


@pytest.mark.django_db
def test_a_job_whose_worker_died_is_taken_over(
    client_a, decisions, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job_id = client_a.post("/api/v1/policies/simulate", _body(), format="json").json()["id"]
    SimulationJob.objects.filter(pk=job_id).update(
        state="running", started_at=db_now(), heartbeat_at=db_now() - timedelta(minutes=5)
    )
    assert simulation_job_run(job_id=job_id) is False  # its worker may still be alive
    SimulationJob.objects.filter(pk=job_id).update(heartbeat_at=db_now() - timedelta(hours=1))
    assert simulation_job_run(job_id=job_id) is True
    assert SimulationJob.objects.get(pk=job_id).state == "succeeded"


@pytest.mark.django_db
def test_a_failing_job_records_its_error(tenant):
    job = SimulationJob.objects.create(
        tenant=tenant,
        policy_sha256="0" * 64,
        document={"version": 1},  # not a normalised document: compiling it fails
        since=db_now() - timedelta(hours=1),
        until=db_now(),
        max_decisions=10,
        created_at=db_now(),
    )
    assert simulation_job_run(job_id=job.id) is True
    job.refresh_from_db()
    assert job.state == "failed" and job.error["code"] == "SIMULATION_FAILED" and job.finished_at


@pytest.mark.django_db
def test_a_bound_key_simulates_only_its_binding(
    tenant, decisions, django_capture_on_commit_callbacks
):
    payments, _, _ = decisions
    _, plaintext = factories.make_api_key(
        tenant, scopes=["policies:read"], project=payments, environment="prod"
    )
    from rest_framework.test import APIClient

    bound = APIClient()
    bound.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    job = simulate(bound, _body(), django_capture_on_commit_callbacks)
    assert job["scope"] == {"project": "payments", "environment": "prod"}
    assert job["result"]["evaluated"] == 4  # payments/prod only
    assert bound.get("/api/v1/policies/simulations").json()["results"][0]["id"] == job["id"]


@pytest.mark.django_db
def test_jobs_are_listed_without_their_report_and_stay_in_their_tenant(
    client_a, client_b, decisions, django_capture_on_commit_callbacks
):
    job = simulate(client_a, _body(), django_capture_on_commit_callbacks)
    listed = client_a.get("/api/v1/policies/simulations").json()["results"]
    assert [row["id"] for row in listed] == [job["id"]] and listed[0]["result"] is None
    assert_problem(client_b.get(job["url"]), 404, "NOT_FOUND")
    assert client_b.get("/api/v1/policies/simulations").json()["results"] == []


@pytest.mark.django_db
def test_nothing_is_evaluated_in_the_request(
    client_a, decisions, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = client_a.post("/api/v1/policies/simulate", _body(), format="json")
    job = response.json()
    assert response.status_code == 202 and job["status"] == "queued"
    assert job["result"] is None and job["progress"]["processed"] == 0


# --- end to end with a real Celery worker ------------------------------------------------------


def _until_done(client, url: str, worker, seconds: float = 120.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in ("succeeded", "failed", "done"):
            return body
        if worker.poll() is not None:
            raise AssertionError(worker.log_path.read_text()[-3000:])
        time.sleep(0.1)  # waiting for another process, not timing anything
    raise AssertionError(f"the worker did not finish {url} in {seconds} s: {body}")


@pytest.mark.xdist_group("celery-worker")
def test_a_real_worker_runs_simulations_and_ledger_verifications(client_a, tenant, celery_worker):
    factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "100.00")
    for micros in (1_000_000, 3_000_000):
        gate_service(tenant, micros=micros)
    started = client_a.post("/api/v1/policies/simulate", _body(), format="json")
    assert started.status_code == 202, started.content
    job = _until_done(client_a, started.json()["url"], celery_worker)
    assert job["status"] == "succeeded", job
    assert job["result"]["evaluated"] == 2 and job["result"]["changed_count"] == 1
    verify = client_a.post("/api/v1/ledger/verify")
    assert verify.status_code == 202
    done = _until_done(
        client_a, f"/api/v1/ledger/verifications/{verify.json()['id']}", celery_worker
    )
    assert done["status"] == "done" and done["ok"] is True and done["entries_checked"] > 0
    assert client_a.get("/api/v1/ledger/verify").json()["verification_id"] == done["id"]
    assert Decision.objects.count() == 2  # simulation wrote nothing
