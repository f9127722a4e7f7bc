"""HCP Terraform run task (issue 16 item 2): the signed receiver answers at once, a worker
fetches the plan JSON (following the redirect), gates its resource_changes and PATCHes the
task-results callback, retrying 5xx. Fixtures are validated as `pytfe`'s RunTaskRequest; the
expected callback is built with `pytfe`'s TaskResultCallbackRequestOptions."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json

import pytest
from pytfe.models.run_task_integration import (
    TaskResultCallbackRequestOptions,
    TaskResultCallbackStatus,
    TaskResultOutcome,
    TaskResultTag,
)
from pytfe.models.run_task_request import RunTaskRequest

from enforcement.integrations.terraform_plan import plan_changes
from enforcement.models import Decision, RunTaskResult
from enforcement.tasks import run_task_evaluate_task
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.helpers import policy_document, publish_policy
from tests.fakes.hcp_server import FakeHcp
from tests.integrations.helpers import fixture_json, key_client

pytestmark = pytest.mark.django_db
URL = "/api/v1/gate/terraform/run-task"
CREATE = "/api/v1/integrations/terraform/run-tasks"
PRICES = {"aws_instance": "30.37", "aws_eip": "3.65", "aws_nat_gateway": "32.85"}


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.RUN_TASK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.RUN_TASK_RETRY_BACKOFF_S = 0.01


@pytest.fixture
def integration(tenant, client_a):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    publish_policy(
        tenant, policy_document(unit_prices={"terraform": {"resource_monthly_usd": PRICES}})
    )
    response = client_a.post(
        CREATE, {"name": "hcp", "project": "payments", "environment": "prod"}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def _request(hcp: FakeHcp, **overrides) -> dict:
    payload = fixture_json("terraform", "run_task_request.json")
    payload.update(
        plan_json_api_url=hcp.plan_url(), task_result_callback_url=hcp.callback_url(), **overrides
    )
    RunTaskRequest.model_validate(payload)  # what HCP Terraform sends, by pytfe's model
    return payload


def _post(client, integration: dict, payload: dict, *, key: str | None = None, signature=None):
    raw = json.dumps(payload).encode()
    digest = hmac.new((key or integration["hmac_key"]).encode(), raw, hashlib.sha512).hexdigest()
    headers = {} if signature is False else {"HTTP_X_TFC_TASK_SIGNATURE": signature or digest}
    return client.generic(
        "POST",
        f"{URL}?integration={integration['id']}",
        raw,
        content_type="application/json",
        **headers,
    )


def test_the_fixtures_are_pytfe_run_task_requests():
    for name in ("run_task_request.json", "run_task_verification.json"):
        RunTaskRequest.model_validate(fixture_json("terraform", name))


def test_plan_resource_changes_are_costed_by_action():
    changes = plan_changes(fixture_json("terraform", "plan.json"), PRICES)
    assert (changes.creates, changes.updates, changes.replaces, changes.deletes) == (3, 1, 1, 1)
    assert changes.monthly_micros == 2 * 30_370_000 - 3_650_000  # the replace adds nothing
    db = next(c for c in changes.changes if c["type"] == "aws_db_instance")
    assert db["before"]["instance_class"] == "db.t3.medium"
    assert db["after"]["instance_class"] == "db.m5.large"


def test_the_verification_request_is_answered_without_a_callback(api_client, integration):
    ping = fixture_json("terraform", "run_task_verification.json")
    response = _post(api_client, integration, ping)
    assert response.status_code == 200 and response.json() == {"status": "verified"}
    assert not RunTaskResult.objects.exists()


@pytest.mark.parametrize("signature", [False, "0" * 128, "zz"], ids=["missing", "wrong", "garbage"])
def test_a_request_not_signed_with_the_key_is_401(api_client, integration, signature):
    ping = fixture_json("terraform", "run_task_verification.json")
    assert_problem(
        _post(api_client, integration, ping, signature=signature),
        401,
        "RUN_TASK_SIGNATURE_INVALID",
    )
    other = _post(api_client, integration, ping, key="another-key")
    assert_problem(other, 401, "RUN_TASK_SIGNATURE_INVALID")
    unknown = api_client.generic(
        "POST", f"{URL}?integration=rti_nope", b"{}", content_type="application/json"
    )
    assert_problem(unknown, 401, "RUN_TASK_SIGNATURE_INVALID")


def test_a_run_is_accepted_at_once_then_evaluated_and_called_back(
    api_client, integration, django_capture_on_commit_callbacks
):
    plan = fixture_json("terraform", "plan.json")
    with FakeHcp(plan, token=_request_token(), callback_failures=2) as hcp:
        payload = _request(hcp)
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = _post(api_client, integration, payload)
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "accepted"
        assert len(queued) == 1 and not hcp.requests  # nothing fetched before answering
        result_id = response.json()["id"]
        assert run_task_evaluate_task(result_id) == "passed"  # what the worker runs
        assert run_task_evaluate_task(result_id) is None  # delivered twice: answered once
    methods = [(m, p.split("?")[0]) for m, p, _, _ in hcp.requests]
    assert methods[:2] == [
        ("GET", "/api/v2/plans/plan-6AFmRJW1PFJ7qbAh/json-output"),
        ("GET", "/archivist/v1/object/plan-json"),  # the redirect was followed
    ]
    assert [m for m, _ in methods[2:]] == ["PATCH"] * 3  # two 503s retried
    run = RunTaskResult.objects.get(pk=result_id)
    assert run.state == "passed" and run.callback_attempts == 3
    assert bytes(run.token_ciphertext) == b""  # the run's token is not kept
    decision = Decision.objects.get(pk=run.decision_id)
    assert decision.source == "terraform"
    assert decision.idempotency_key == "terraform:run-i3Df5to9ELvibKpQ:post_plan"
    assert decision.request["monthly_delta_usd"] == "57.09"
    (callback,) = hcp.callbacks
    expected = TaskResultCallbackRequestOptions(
        status=TaskResultCallbackStatus.passed,
        message=f"Tollgate ALLOW: {decision.response['message']}",
        outcomes=[
            TaskResultOutcome(
                outcome_id=decision.pk,
                description="Tollgate ALLOW: WITHIN_BUDGET",
                body=decision.response["message"],
                tags={
                    "Outcome": [TaskResultTag(label="ALLOW", level="info")],
                    "Monthly delta": [TaskResultTag(label="57.09 USD")],
                },
            ),
            TaskResultOutcome(
                outcome_id=f"{run.pk}-aws_instance",
                description="aws_instance: 60.74 USD per month",
                tags={"Resource type": [TaskResultTag(label="aws_instance")]},
            ),
            TaskResultOutcome(
                outcome_id=f"{run.pk}-aws_eip",
                description="aws_eip: -3.65 USD per month",
                tags={"Resource type": [TaskResultTag(label="aws_eip")]},
            ),
        ],
    ).to_payload()
    assert callback == expected
    assert len(callback["data"]["relationships"]["outcomes"]["data"]) <= 10


def _request_token() -> str:
    return fixture_json("terraform", "run_task_request.json")["access_token"]


def test_a_policy_rule_over_resource_changes_fails_the_run(
    tenant, api_client, integration, django_capture_on_commit_callbacks
):
    document = policy_document(
        unit_prices={"terraform": {"resource_monthly_usd": PRICES}},
        rules=[
            {
                "id": "no-prod-deletes",
                "when": "request.resource.attributes.deletes > 0 && request.environment == 'prod'",
                "then": "deny",
                "reason_code": "PROD_DELETE",
                "message": "Deleting resources in prod needs a change ticket.",
            }
        ],
    )
    publish_policy(tenant, document)
    with FakeHcp(fixture_json("terraform", "plan.json"), token=_request_token()) as hcp:
        with django_capture_on_commit_callbacks(execute=False):
            response = _post(api_client, integration, _request(hcp))
        assert run_task_evaluate_task(response.json()["id"]) == "failed"
    run = RunTaskResult.objects.get(pk=response.json()["id"])
    assert run.state == "failed"
    (callback,) = hcp.callbacks
    attributes = callback["data"]["attributes"]
    assert attributes["status"] == "failed"
    assert "change ticket" in attributes["message"]
    tags = callback["data"]["relationships"]["outcomes"]["data"][0]["attributes"]["tags"]
    assert tags["Outcome"] == [{"label": "DENY", "level": "error"}]


def test_a_redelivered_request_is_evaluated_once(
    api_client, integration, django_capture_on_commit_callbacks
):
    with FakeHcp(fixture_json("terraform", "plan.json"), token=_request_token()) as hcp:
        payload = _request(hcp)
        with django_capture_on_commit_callbacks(execute=False) as queued:
            first = _post(api_client, integration, payload)
            second = _post(api_client, integration, payload)
    assert first.json()["id"] == second.json()["id"] and len(queued) == 1


def test_a_plan_that_cannot_be_read_fails_the_run_closed(
    api_client, integration, django_capture_on_commit_callbacks
):
    with FakeHcp(fixture_json("terraform", "plan.json"), token="another-token") as hcp:
        with django_capture_on_commit_callbacks(execute=False):
            response = _post(api_client, integration, _request(hcp))
        run_task_evaluate_task(response.json()["id"])
    run = RunTaskResult.objects.get(pk=response.json()["id"])
    # The plan fetch was refused (401): the callback (also refused) cannot be delivered.
    assert run.state == "errored"
    assert not Decision.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"payload_version": 2}, "payload_version"),
        ({"task_result_callback_url": "ftp://x"}, "task_result_callback_url"),
        ({"task_result_callback_url": "https://evil.example.com/cb"}, "task_result_callback_url"),
        ({"run_id": ""}, "run_id"),
    ],
)
def test_an_invalid_request_is_400(api_client, integration, change, field):
    with FakeHcp({}, token="t") as hcp:
        payload = {**_request(hcp), **change}
    problem = assert_problem(
        _post(api_client, integration, payload), 400, "RUN_TASK_PAYLOAD_INVALID"
    )
    assert problem["errors"][0]["field"] == field


def test_integrations_are_created_within_the_keys_binding(tenant, integration):
    assert integration["hmac_key"] and integration["url"].endswith(
        f"/api/v1/gate/terraform/run-task?integration={integration['id']}"
    )
    payments = tenant.projects.get(slug="payments")
    factories.make_project(tenant, "search")
    _, plaintext = factories.make_api_key(tenant, project=payments, environment="dev")
    bound = key_client(plaintext)
    refused = bound.post(CREATE, {"name": "x", "project": "search"}, format="json")
    assert_problem(refused, 403, "KEY_SCOPE_MISMATCH")
    created = bound.post(CREATE, {"name": "x"}, format="json").json()
    assert (created["project"], created["environment"]) == ("payments", "dev")
    listed = bound.get(CREATE).json()["results"]
    assert [row["id"] for row in listed] == [created["id"]]
    assert all("hmac_key" not in row for row in listed)


def test_the_hmac_key_is_stored_sealed(integration):
    from enforcement.models import RunTaskIntegration

    row = RunTaskIntegration.objects.get(pk=integration["id"])
    assert integration["hmac_key"].encode() not in bytes(row.ciphertext)
    assert copy.deepcopy(integration["hmac_key"])


def _integration(tenant):
    from enforcement.services.run_tasks import run_task_integration_create

    project = factories.make_project(tenant, "iso")
    return run_task_integration_create(
        tenant=tenant, name="x", project=project, environment="prod"
    )[0]


def test_another_tenants_key_lists_none_of_our_integrations(tenant, client_b):
    _integration(tenant)
    assert client_b.get(CREATE).json()["results"] == []


def test_an_integration_signs_only_for_its_own_tenant(tenant, other_tenant, api_client):
    """The integration id names the tenant: another tenant's key cannot be used to sign."""
    ours = _integration(tenant)
    from enforcement.services.run_tasks import run_task_integration_create

    theirs, their_key = run_task_integration_create(
        tenant=other_tenant,
        name="y",
        project=factories.make_project(other_tenant, "iso"),
        environment="prod",
    )
    ping = fixture_json("terraform", "run_task_verification.json")
    forged = _post(api_client, {"id": ours.id, "hmac_key": their_key}, ping)
    assert_problem(forged, 401, "RUN_TASK_SIGNATURE_INVALID")
    assert theirs.tenant_id != ours.tenant_id


@pytest.mark.xdist_group("celery-worker")
def test_a_real_worker_answers_the_callback(api_client, integration, celery_worker):
    """End to end: the receiver answers, a real Celery worker (its own process) evaluates and
    PATCHes the fake HCP server."""
    import time

    with FakeHcp(fixture_json("terraform", "plan.json"), token=_request_token()) as hcp:
        response = _post(api_client, integration, _request(hcp))
        assert response.status_code == 200, response.content
        deadline = time.monotonic() + 120
        result = RunTaskResult.objects.filter(pk=response.json()["id"])
        while result.filter(state__in=["queued", "running"]).exists():
            assert time.monotonic() < deadline, celery_worker.log_path.read_text()[-3000:]
            if celery_worker.poll() is not None:
                raise AssertionError(celery_worker.log_path.read_text()[-3000:])
            time.sleep(0.1)  # waiting for another process, not timing anything
        assert hcp.callbacks, celery_worker.log_path.read_text()[-3000:]
    assert hcp.callbacks[0]["data"]["attributes"]["status"] == "passed"
    run = RunTaskResult.objects.get(pk=response.json()["id"])
    assert run.state == "passed" and run.decision_id


def test_a_revoked_integration_is_refused(api_client, client_a, integration):
    ping = fixture_json("terraform", "run_task_verification.json")
    assert _post(api_client, integration, ping).status_code == 200
    detail = f"{CREATE}/{integration['id']}"
    assert client_a.get(detail).json()["revoked_at"] is None
    assert client_a.delete(detail).status_code == 204
    assert client_a.delete(detail).status_code == 204  # idempotent
    assert client_a.get(detail).json()["revoked_at"]
    assert_problem(_post(api_client, integration, ping), 401, "RUN_TASK_SIGNATURE_INVALID")


def test_another_tenant_cannot_read_or_revoke_our_integration(tenant, client_a, client_b):
    row = _integration(tenant)
    for call in (client_b.get, client_b.delete):
        assert_problem(call(f"{CREATE}/{row.pk}"), 404, "NOT_FOUND")
    row.refresh_from_db()
    assert row.revoked_at is None
    assert client_a.get(f"{CREATE}/{row.pk}").status_code == 200
