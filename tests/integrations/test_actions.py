"""Actions (issue 16 item 5, the gap register's ECP-011): requested by decisions and events,
leased by workers with a fencing epoch, completed/failed/cancelled, retried with backoff; a
stale owner's completion is rejected; concurrent workers on real PostgreSQL lease each action
once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from controlplane.core.clock import db_now
from enforcement.models import Action
from enforcement.services import actions as services
from tests import factories
from tests.api_contracts import IsolationCase, TenantIsolationContract, assert_problem
from tests.integrations.helpers import key_client

pytestmark = pytest.mark.django_db
URL = "/api/v1/actions"


@pytest.fixture
def ops(tenant, api_key):
    factories.make_project(tenant, "payments")
    return key_client(api_key[1])


def _request(client, **body):
    body = {k: v for k, v in body.items() if v is not None}
    body.setdefault("kind", "notify")
    body.setdefault("params", {"channel": "#finops"})
    if "decision_id" not in body:
        body.setdefault("project", "payments")
        body.setdefault("environment", "prod")
    response = client.post(URL, body, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def _lease(client, worker="w1", **body):
    return client.post(f"{URL}/lease", {"worker": worker, **body}, format="json")


def _expire_lease(action_id: str) -> None:
    """The lease lapses (what time does to a worker that stopped heartbeating)."""
    Action.objects.filter(pk=action_id).update(lease_expires_at=db_now() - timedelta(seconds=1))


def test_request_lease_complete(ops):
    requested = _request(ops)
    assert requested["state"] == "pending" and requested["epoch"] == 0
    leased = _lease(ops).json()
    assert leased["id"] == requested["id"] and leased["state"] == "leased"
    assert leased["epoch"] == 1 and leased["lease_owner"] == "w1" and leased["attempts"] == 1
    assert _lease(ops, "w2").status_code == 204  # nothing else is ready
    done = ops.post(
        f"{URL}/{leased['id']}/complete", {"epoch": 1, "result": {"ticket": "OPS-1"}}, format="json"
    )
    assert done.status_code == 200 and done.json()["state"] == "completed"
    assert done.json()["result"] == {"ticket": "OPS-1"}
    again = ops.post(f"{URL}/{leased['id']}/complete", {"epoch": 1}, format="json")
    assert_problem(again, 409, "ACTION_RESOLVED")


def test_the_same_idempotency_key_is_the_same_action(ops):
    first = ops.post(URL, {"kind": "notify", "idempotency_key": "k1"}, format="json")
    second = ops.post(URL, {"kind": "notify", "idempotency_key": "k1"}, format="json")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]


def test_a_failed_attempt_is_retried_after_a_growing_backoff(ops, settings):
    settings.ACTION_RETRY_BACKOFF_S = 30
    action = _request(ops, max_attempts=2)
    leased = _lease(ops).json()
    failed = ops.post(
        f"{URL}/{action['id']}/fail",
        {"epoch": leased["epoch"], "error": {"why": "503"}},
        format="json",
    ).json()
    assert failed["state"] == "pending" and failed["last_error"] == {"why": "503"}
    row = Action.objects.get(pk=action["id"])
    assert timedelta(seconds=29) < row.next_attempt_at - row.updated_at <= timedelta(seconds=30)
    assert _lease(ops).status_code == 204  # not before its retry time
    Action.objects.filter(pk=row.pk).update(next_attempt_at=db_now())
    second = _lease(ops).json()
    assert second["epoch"] == 2 and second["attempts"] == 2
    final = ops.post(f"{URL}/{action['id']}/fail", {"epoch": 2}, format="json").json()
    assert final["state"] == "failed" and final["finished_at"]  # out of attempts


def test_a_stale_owners_completion_is_rejected(ops):
    action = _request(ops)
    first = _lease(ops, "slow-worker").json()
    _expire_lease(action["id"])
    second = _lease(ops, "fast-worker").json()
    assert second["id"] == action["id"] and second["epoch"] == first["epoch"] + 1
    stale = ops.post(f"{URL}/{action['id']}/complete", {"epoch": first["epoch"]}, format="json")
    problem = assert_problem(stale, 409, "ACTION_LEASE_LOST")
    assert problem["epoch"] == second["epoch"]
    stale_fail = ops.post(f"{URL}/{action['id']}/fail", {"epoch": first["epoch"]}, format="json")
    assert_problem(stale_fail, 409, "ACTION_LEASE_LOST")
    assert Action.objects.get(pk=action["id"]).lease_owner == "fast-worker"
    done = ops.post(f"{URL}/{action['id']}/complete", {"epoch": second["epoch"]}, format="json")
    assert done.json()["state"] == "completed"


def test_cancel_fences_out_the_worker_holding_it(ops):
    action = _request(ops)
    leased = _lease(ops).json()
    cancelled = ops.post(f"{URL}/{action['id']}/cancel").json()
    assert cancelled["state"] == "cancelled" and cancelled["epoch"] == leased["epoch"] + 1
    late = ops.post(f"{URL}/{action['id']}/complete", {"epoch": leased["epoch"]}, format="json")
    assert_problem(late, 409, "ACTION_RESOLVED")
    assert_problem(ops.post(f"{URL}/{action['id']}/cancel"), 409, "ACTION_RESOLVED")


def test_a_decision_requests_actions_and_bound_keys_stay_inside(tenant, ops):
    from tests.enforcement.helpers import gate_service

    search = factories.make_project(tenant, "search")
    body = gate_service(tenant, micros=1_000_000, project="payments", environment="dev")
    linked = _request(ops, decision_id=body["decision_id"])
    linked_row = Action.objects.get(pk=linked["id"])
    assert (linked_row.project.slug, linked_row.environment) == ("payments", "dev")
    _request(ops, project="search", environment="dev", kind="scale_down")
    payments = tenant.projects.get(slug="payments")
    _, plaintext = factories.make_api_key(
        tenant, scopes=["actions:read", "actions:write"], project=payments, environment="dev"
    )
    bound = key_client(plaintext)
    refused = bound.post(URL, {"kind": "notify", "project": "search"}, format="json")
    assert_problem(refused, 403, "KEY_SCOPE_MISMATCH")
    other_decision = gate_service(tenant, micros=1_000_000, project="search", environment="dev")
    hidden = bound.post(
        URL, {"kind": "notify", "decision_id": other_decision["decision_id"]}, format="json"
    )
    assert_problem(hidden, 404, "NOT_FOUND")
    leased = _lease(bound).json()
    assert leased["id"] == linked["id"]  # never the search action
    assert _lease(bound).status_code == 204
    assert {row["id"] for row in bound.get(URL).json()["results"]} == {linked["id"]}
    assert search


def test_a_cloudevent_requests_actions_with_its_decision(tenant, ops):
    import json

    factories.make_budget(tenant, "100.00", project=tenant.projects.get(slug="payments"))
    event = {
        "specversion": "1.0",
        "id": "evt-9",
        "source": "/alerts",
        "type": "com.example.spend",
        "data": {
            "project": "payments",
            "environment": "prod",
            "estimated_cost_usd": "500.00",
            "actions": [
                {"kind": "notify", "params": {"channel": "#finops"}},
                {"kind": "open_ticket"},
            ],
        },
    }
    send = lambda: ops.generic(  # noqa: E731
        "POST",
        "/api/v1/gate/cloudevents",
        json.dumps(event),
        content_type="application/cloudevents+json",
    )
    answer = send().json()
    assert answer["outcome"] == "DENY"
    assert [a["kind"] for a in answer["actions"]] == ["notify", "open_ticket"]
    rows = Action.objects.filter(decision_id=answer["decision_id"])
    assert rows.count() == 2
    assert send().json()["actions"] == answer["actions"]  # redelivery: the same actions
    assert Action.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_lease_each_action_exactly_once(tenant):
    """Eight workers with their own PostgreSQL sessions drain 40 actions: no action is leased
    twice (SKIP LOCKED), none is lost, and every completion with the right epoch lands."""
    for index in range(40):
        services.action_request(tenant=tenant, kind="notify", params={"n": index})
    leased: list[tuple[str, str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(name: str) -> None:
        try:
            start.wait()
            while True:
                action = services.action_lease(
                    queryset=Action.objects.for_tenant(tenant), worker=name
                )
                if action is None:
                    return
                services.action_complete(action_id=action.id, epoch=action.epoch)
                with lock:
                    leased.append((action.id, name, action.epoch))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    ids = [action_id for action_id, _, _ in leased]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert all(epoch == 1 for _, _, epoch in leased)
    assert Action.objects.filter(state="completed").count() == 40
    assert len({name for _, name, _ in leased}) > 1  # the work was really shared


def _leased(tenant):
    services.action_request(tenant=tenant, kind="notify")
    return services.action_lease(queryset=Action.objects.for_tenant(tenant), worker="w")


def _pending(tenant):
    return services.action_request(tenant=tenant, kind="notify")[0]


class TestActionTenantIsolation(TenantIsolationContract):
    isolation_cases = [
        IsolationCase("action-detail", "GET", _pending, lambda a: f"{URL}/{a.pk}"),
        IsolationCase(
            "action-complete",
            "POST",
            _leased,
            lambda a: f"{URL}/{a.pk}/complete",
            body={"epoch": 1},
        ),
        IsolationCase(
            "action-fail", "POST", _leased, lambda a: f"{URL}/{a.pk}/fail", body={"epoch": 1}
        ),
        IsolationCase("action-cancel", "POST", _pending, lambda a: f"{URL}/{a.pk}/cancel"),
    ]

    def test_another_tenants_worker_leases_none_of_ours(self, tenant, client_b):
        _pending(tenant)
        response = client_b.post(f"{URL}/lease", {"worker": "w"}, format="json")
        assert response.status_code == 204
