"""The approvals queue and personal keys: people decide in the browser or with their own key."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from controlplane.audit.models import LedgerEntry
from controlplane.tenancy.models import ApiKey
from enforcement.models import ApprovalRequest, ApprovalVote
from tests import factories
from tests.dashboard.conftest import gate, logged_in

pytestmark = pytest.mark.django_db


def test_queue_shows_only_what_the_user_may_decide(world):
    tenant = world["tenant"]
    small = gate(tenant, "150.00")  # default routing: owners and admins
    big = gate(tenant, "600.00")  # rule big-prod: the finops group
    own = gate(tenant, "150.00", requester="olivia@example.com")  # olivia asked herself
    olivia = logged_in(world["owner"]).get("/dashboard/approvals/").content.decode()
    assert small["approval"]["id"] in olivia
    assert big["approval"]["id"] not in olivia and own["approval"]["id"] not in olivia
    fiona = logged_in(world["fiona"]).get("/dashboard/approvals/").content.decode()
    assert big["approval"]["id"] in fiona and small["approval"]["id"] not in fiona
    assert "0 of 1 approval" in fiona and "Waterfall" in fiona
    assert (
        "Nothing waits for you"
        in logged_in(world["member"]).get("/dashboard/approvals/").content.decode()
    )


def test_approve_in_the_dashboard_then_the_gate_continues(world, client_a):
    key = uuid.uuid4().hex
    body = {
        "project": "payments",
        "environment": "prod",
        "estimated_cost_usd": "600.00",
        "requester": "ci@example.com",
    }
    asked = client_a.post(
        "/api/v1/gate/decisions", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    ).json()
    approval_id = asked["approval"]["id"]
    fiona = logged_in(world["fiona"])
    response = fiona.post(
        f"/dashboard/approvals/{approval_id}/vote/",
        {"vote": "approve", "comment": "capacity for the launch"},
        follow=True,
    )
    page = response.content.decode()
    assert "approved: the quorum is reached" in page
    assert "Nothing waits for you" in page  # decided: gone from her queue
    vote = ApprovalVote.objects.get(request_id=approval_id)
    assert (vote.via, vote.comment) == ("dashboard", "capacity for the launch")
    assert LedgerEntry.objects.filter(kind="approval.approved").exists()

    polled = client_a.post(
        "/api/v1/gate/decisions", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    ).json()
    token = polled["approval"]["token"]
    continued = client_a.post(
        "/api/v1/gate/decisions",
        {**body, "approval_token": token},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    ).json()
    assert (continued["outcome"], continued["reason_code"]) == ("ALLOW", "APPROVED")
    assert continued["reservation"]["id"] == asked["reservation"]["id"]


def test_deny_and_refusals_are_readable(world):
    tenant = world["tenant"]
    asked = gate(tenant, "150.00")
    member = logged_in(world["member"])
    refused = member.post(
        f"/dashboard/approvals/{asked['approval']['id']}/vote/", {"vote": "approve"}, follow=True
    )
    assert "names roles" in refused.content.decode()  # the service's reason, shown as an error
    owner = logged_in(world["owner"])
    denied = owner.post(
        f"/dashboard/approvals/{asked['approval']['id']}/vote/",
        {"vote": "deny", "comment": "not this quarter"},
        follow=True,
    )
    assert "denied; the held money is released" in denied.content.decode()
    assert ApprovalRequest.objects.get(pk=asked["approval"]["id"]).state == "denied"
    again = owner.post(
        f"/dashboard/approvals/{asked['approval']['id']}/vote/", {"vote": "deny"}, follow=True
    )
    assert "already denied" in again.content.decode()


def test_personal_key_is_bound_to_me_shown_once_and_votes_as_me(world):
    tenant = world["tenant"]
    fiona = logged_in(world["fiona"])
    created = fiona.post(
        "/dashboard/keys/",
        {"name": "cli", "scopes": ["approvals:read", "approvals:write"]},
    )
    assert created.status_code == 200 and created["Cache-Control"] == "no-store"
    plaintext = created.content.decode().split('id="new-key">')[1].split("<")[0]
    record = ApiKey.objects.get(tenant=tenant, name="cli")
    assert record.user == world["fiona"] and record.created_by == world["fiona"]
    assert plaintext.startswith(f"tg_{record.prefix}_")
    assert plaintext not in fiona.get("/dashboard/keys/").content.decode()  # once

    asked = gate(tenant, "600.00")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    listed = api.get("/api/v1/approvals?status=pending").json()["results"]
    assert [a["id"] for a in listed] == [asked["approval"]["id"]]
    voted = api.post(
        f"/api/v1/approvals/{asked['approval']['id']}/approve", {"comment": "ok"}, format="json"
    )
    assert voted.status_code == 200 and voted.json()["status"] == "approved"

    revoked = fiona.post(f"/dashboard/keys/{record.id}/revoke/", follow=True)
    assert "is revoked" in revoked.content.decode()
    assert api.get("/api/v1/approvals").status_code == 401


def test_members_cannot_give_their_key_write_powers(world):
    fiona = logged_in(world["fiona"])
    response = fiona.post("/dashboard/keys/", {"name": "sneaky", "scopes": ["budgets:write"]})
    assert response.status_code == 400 and b"not one of the available choices" in response.content
    assert not ApiKey.objects.filter(name="sneaky").exists()
    owner = logged_in(world["owner"])
    assert (
        owner.post("/dashboard/keys/", {"name": "ops", "scopes": ["budgets:write"]}).status_code
        == 200
    )


def test_cannot_revoke_someone_elses_key(world):
    _, _ = factories.make_api_key(world["tenant"], user=world["owner"], name="olivia's")
    key = ApiKey.objects.get(name="olivia's")
    response = logged_in(world["fiona"]).post(f"/dashboard/keys/{key.id}/revoke/")
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_queue_pages_by_deadline(world):
    from controlplane.dashboard.views import approvals as view

    tenant = world["tenant"]
    ids = [
        gate(tenant, "101.00", project="platform")["approval"]["id"]
        for _ in range(view.QUEUE_PAGE + 2)
    ]
    owner = logged_in(world["owner"])
    first = owner.get("/dashboard/approvals/").content.decode()
    assert f"{len(ids)} requests wait for you." in first
    assert sum(i in first for i in ids) == view.QUEUE_PAGE and 'rel="next"' in first
    second = owner.get("/dashboard/approvals/?page=2").content.decode()
    assert sum(i in second for i in ids) == 2 and ids[-1] in second


def test_a_personal_keys_children_are_the_persons_and_go_with_it(world):
    """17's key hierarchy on the dashboard's keys: what a personal key issues through the API
    acts as the same person, and revoking the key on the dashboard revokes what it issued."""
    owner = logged_in(world["owner"])
    created = owner.post("/dashboard/keys/", {"name": "ops", "scopes": ["api_keys:write"]})
    plaintext = created.content.decode().split('id="new-key">')[1].split("<")[0]
    record = ApiKey.objects.get(name="ops")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    child = api.post(
        "/api/v1/api-keys", {"name": "ci", "scopes": ["api_keys:write"]}, format="json"
    )
    assert child.status_code == 201, child.content
    child_row = ApiKey.objects.get(pk=child.json()["id"])
    assert (child_row.user, child_row.created_by, child_row.parent) == (
        world["owner"],
        world["owner"],
        record,
    )
    owner.post(f"/dashboard/keys/{record.id}/revoke/")
    child_row.refresh_from_db()
    assert child_row.revoked_at is not None
