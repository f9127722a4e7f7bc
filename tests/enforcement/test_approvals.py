"""Approval workflow end to end: gate -> approval request -> votes -> token -> continuation."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from controlplane.audit.models import LedgerEntry, OutboxEvent
from controlplane.audit.verify import verify_ledger
from controlplane.identity.models import ApproverGroup
from enforcement.models import ApprovalRequest, ApprovalVote, BudgetPeriod, Reservation
from enforcement.services import approvals as approval_services
from tests import factories
from tests.api_contracts import IsolationCase, TenantIsolationContract, assert_problem
from tests.enforcement.approval_helpers import (
    approve,
    approved_token,
    deny,
    gate,
    pending_approval,
)
from tests.enforcement.helpers import set_gate_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def budget(tenant):
    project = factories.make_project(tenant, "payments")
    factories.require_approval_above(tenant, "100.00")
    return factories.make_budget(tenant, "1000.00", project=project)


def reserved(budget) -> int:
    return BudgetPeriod.objects.get(budget=budget).reserved_micros


def control_kinds(tenant) -> list[str]:
    return list(
        LedgerEntry.objects.filter(chain=f"control:{tenant.id}")
        .order_by("seq")
        .values_list("kind", flat=True)
    )


def test_require_approval_opens_a_request_and_holds_the_money(client_a, tenant, budget):
    answer = pending_approval(client_a)
    approval = answer["approval"]
    assert set(approval) >= {"id", "status", "required_approvals", "url"}
    assert approval["status"] == "pending" and approval["required_approvals"] == 1
    assert approval["url"].endswith(f"/api/v1/approvals/{approval['id']}")
    request = ApprovalRequest.objects.get(pk=approval["id"])
    assert request.decision_id == answer["decision_id"]
    assert request.reservation_id == answer["reservation"]["id"]
    assert request.routing == {
        "rule_id": None,
        "groups": [],
        "roles": ["owner", "admin"],
        "quorum": 1,
        "separate_from_requester": True,
        "ttl_seconds": 86400,
    }
    # The hold lasts exactly as long as the approval (the reservation sweep cannot fire first).
    assert request.reservation.expires_at == request.expires_at
    assert answer["reservation"]["expires_at"] == request.expires_at.isoformat()
    assert reserved(budget) == 150_000_000
    event = OutboxEvent.objects.get(event_type="approval.requested")
    assert event.payload["approval_id"] == request.id
    assert event.payload["decision_id"] == answer["decision_id"]
    assert "approval.requested" in control_kinds(tenant)
    assert verify_ledger(tenant_id=tenant.id).ok


def test_nonprod_routing_does_not_separate_requester(client_a, tenant, budget):
    answer = pending_approval(client_a, environment="dev")
    routing = ApprovalRequest.objects.get(pk=answer["approval"]["id"]).routing
    assert routing["separate_from_requester"] is False


def test_quorum_two_with_requester_excluded(client_a, tenant, budget):
    set_gate_settings(tenant, approvers={"roles": ["owner", "admin"], "quorum": 2})
    answer = pending_approval(client_a, requester="carol@example.com")
    approval_id = answer["approval"]["id"]
    assert answer["approval"]["required_approvals"] == 2
    carol = factories.make_member(tenant, "carol", "owner", email="carol@example.com")
    alice = factories.make_member(tenant, "alice", "admin")
    bob = factories.make_member(tenant, "bob", "owner")

    own = approve(factories.user_client(tenant, carol), approval_id)
    assert_problem(own, 403, "APPROVER_IS_REQUESTER")

    first = approve(factories.user_client(tenant, alice), approval_id)
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "pending" and first.json()["approvals_count"] == 1
    assert first.json()["token"] is None
    again = approve(factories.user_client(tenant, alice), approval_id)
    assert_problem(again, 409, "APPROVAL_ALREADY_VOTED")

    second = approve(factories.user_client(tenant, bob), approval_id)
    body = second.json()
    assert second.status_code == 200 and body["status"] == "approved"
    assert body["approvals_count"] == 2 and body["token"].count(".") == 2
    assert {v["user"] for v in body["votes"]} == {"alice", "bob"}
    kinds = control_kinds(tenant)
    assert kinds.count("approval.voted") == 2 and "approval.approved" in kinds
    resolved = OutboxEvent.objects.get(event_type="approval.resolved")
    assert resolved.payload["status"] == "approved"
    assert verify_ledger(tenant_id=tenant.id).ok


def test_one_deny_ends_it_and_releases_the_hold(client_a, tenant, budget):
    answer = pending_approval(client_a)
    approval_id = answer["approval"]["id"]
    admin = factories.make_member(tenant, "admin1", "admin")
    response = deny(factories.user_client(tenant, admin), approval_id, "too expensive")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "denied" and response.json()["token"] is None
    assert Reservation.objects.get(pk=answer["reservation"]["id"]).state == "released"
    assert reserved(budget) == 0
    other = factories.make_member(tenant, "owner1", "owner")
    late = approve(factories.user_client(tenant, other), approval_id)
    assert_problem(late, 409, "APPROVAL_RESOLVED")
    kinds = control_kinds(tenant)
    assert {"approval.voted", "approval.denied"} <= set(kinds)
    released = LedgerEntry.objects.get(kind="reservation.released")
    assert released.payload["decision"] == answer["decision_id"]
    assert released.payload["reason"] == "approval_denied"
    assert verify_ledger(tenant_id=tenant.id).ok


def test_member_without_routing_authority_gets_403(client_a, tenant, budget):
    answer = pending_approval(client_a)
    plain = factories.make_member(tenant, "plain", "member")
    body = assert_problem(
        approve(factories.user_client(tenant, plain), answer["approval"]["id"]),
        403,
        "APPROVER_NOT_AUTHORIZED",
    )
    assert "member" in body["detail"]
    assert not ApprovalVote.objects.exists()


def test_approver_group_grants_authority(client_a, tenant, budget):
    set_gate_settings(tenant, approvers={"roles": [], "groups": ["finops"]})
    answer = pending_approval(client_a)
    approval_id = answer["approval"]["id"]
    owner = factories.make_member(tenant, "owner2", "owner")
    dana = factories.make_member(tenant, "dana", "member")
    assert_problem(
        approve(factories.user_client(tenant, owner), approval_id), 403, "APPROVER_NOT_AUTHORIZED"
    )
    group = ApproverGroup.objects.create(tenant=tenant, name="finops")
    group.members.add(dana)
    assert approve(factories.user_client(tenant, dana), approval_id).json()["status"] == "approved"


def test_user_of_another_tenant_is_not_an_approver(client_a, tenant, other_tenant, budget):
    answer = pending_approval(client_a)
    outsider = factories.make_member(other_tenant, "outsider", "owner")
    # Their key belongs to the other tenant: the approval is not even visible.
    response = approve(factories.user_client(other_tenant, outsider), answer["approval"]["id"])
    assert_problem(response, 404, "NOT_FOUND")


def test_key_without_user_cannot_vote(client_a, tenant, budget):
    answer = pending_approval(client_a)
    assert_problem(approve(client_a, answer["approval"]["id"]), 403, "APPROVER_IDENTITY_REQUIRED")
    assert_problem(client_a.get("/api/v1/approvals"), 403, "APPROVER_IDENTITY_REQUIRED")


def test_scopes_are_required(client_a, tenant, budget):
    answer = pending_approval(client_a)
    owner = factories.make_member(tenant, "owner3", "owner")
    reader = factories.user_client(tenant, owner, scopes=["approvals:read"])
    assert_problem(approve(reader, answer["approval"]["id"]), 403, "SCOPE_MISSING")
    assert reader.get(f"/api/v1/approvals/{answer['approval']['id']}").status_code == 200


def test_list_shows_only_what_the_caller_may_act_on(client_a, tenant, budget):
    mine = pending_approval(client_a, requester="erin@example.com")
    other = pending_approval(client_a, requester="ci@example.com")
    erin = factories.make_member(tenant, "erin", "owner", email="erin@example.com")
    plain = factories.make_member(tenant, "plain2", "member")
    frank = factories.make_member(tenant, "frank", "admin")
    erin_ids = {
        a["id"]
        for a in factories.user_client(tenant, erin).get("/api/v1/approvals").json()["results"]
    }
    assert erin_ids == {other["approval"]["id"]}  # not her own request (separation)
    assert factories.user_client(tenant, plain).get("/api/v1/approvals").json()["results"] == []
    frank_client = factories.user_client(tenant, frank)
    listed = frank_client.get("/api/v1/approvals?status=pending").json()["results"]
    assert {a["id"] for a in listed} == {mine["approval"]["id"], other["approval"]["id"]}
    approve(frank_client, mine["approval"]["id"])
    pending = frank_client.get("/api/v1/approvals?status=pending").json()["results"]
    assert [a["id"] for a in pending] == [other["approval"]["id"]]
    approved = frank_client.get("/api/v1/approvals?status=approved").json()["results"]
    assert [a["id"] for a in approved] == [mine["approval"]["id"]]
    assert_problem(frank_client.get("/api/v1/approvals?status=bogus"), 400, "VALIDATION_FAILED")


def test_session_user_votes_with_csrf(client, tenant, client_a, budget):
    from rest_framework.test import APIClient

    answer = pending_approval(client_a)
    owner = factories.make_member(tenant, "sessionowner", "owner")
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(owner)
    url = f"/api/v1/approvals/{answer['approval']['id']}/approve"
    assert_problem(browser.post(url, {}, format="json"), 403, "PERMISSION_DENIED")  # no CSRF
    listed = browser.get("/api/v1/approvals")
    assert listed.status_code == 200 and len(listed.json()["results"]) == 1
    browser.get("/admin/login/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post(url, {}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert ApprovalVote.objects.get().via == "session"


def test_anonymous_is_401(api_client, tenant, client_a, budget):
    answer = pending_approval(client_a)
    assert api_client.get("/api/v1/approvals").status_code == 401
    assert (
        api_client.post(f"/api/v1/approvals/{answer['approval']['id']}/approve").status_code == 401
    )


def test_expiry_releases_the_reservation_and_headroom_returns(client_a, tenant, budget):
    answer = pending_approval(client_a, estimated_cost_usd="900.00")
    assert reserved(budget) == 900_000_000
    blocked = gate(client_a, estimated_cost_usd="200.00").json()
    assert blocked["outcome"] == "DENY"  # only 100 left while the approval holds 900
    request = ApprovalRequest.objects.get(pk=answer["approval"]["id"])
    # Time passes: move the deadline into the past (the sweep compares with the DB clock).
    past = request.created_at.replace(year=request.created_at.year - 1)
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=past)
    Reservation.objects.filter(pk=request.reservation_id).update(expires_at=past)
    assert approval_services.approvals_expire(batch=10) == 1
    assert approval_services.approvals_expire(batch=10) == 0
    request.refresh_from_db()
    assert request.state == "expired" and request.resolved_at is not None
    assert Reservation.objects.get(pk=request.reservation_id).state == "released"
    assert reserved(budget) == 0
    assert gate(client_a, estimated_cost_usd="99.00").json()["outcome"] == "ALLOW"
    owner = factories.make_member(tenant, "late", "owner")
    assert_problem(
        approve(factories.user_client(tenant, owner), request.id), 409, "APPROVAL_RESOLVED"
    )
    assert (
        OutboxEvent.objects.filter(event_type="approval.resolved").get().payload["status"]
        == "expired"
    )
    assert "approval.expired" in control_kinds(tenant)
    assert verify_ledger(tenant_id=tenant.id).ok


def test_vote_after_deadline_before_sweep_is_409(client_a, tenant, budget):
    answer = pending_approval(client_a)
    request = ApprovalRequest.objects.get(pk=answer["approval"]["id"])
    ApprovalRequest.objects.filter(pk=request.pk).update(
        expires_at=request.created_at.replace(year=request.created_at.year - 1)
    )
    owner = factories.make_member(tenant, "owner4", "owner")
    assert_problem(
        approve(factories.user_client(tenant, owner), request.id), 409, "APPROVAL_EXPIRED"
    )


def test_expire_task_runs_batches(client_a, tenant, budget):
    from enforcement.tasks import approvals_expire_task

    for _ in range(3):
        pending_approval(client_a)
    past = ApprovalRequest.objects.first().created_at.replace(year=2000)
    ApprovalRequest.objects.update(expires_at=past)
    assert approvals_expire_task() == 3
    assert set(ApprovalRequest.objects.values_list("state", flat=True)) == {"expired"}
    assert reserved(budget) == 0


def test_released_hold_cancels_the_approval(client_a, tenant, budget):
    answer = pending_approval(client_a)
    assert (
        client_a.post(f"/api/v1/reservations/{answer['reservation']['id']}/release").status_code
        == 200
    )
    owner = factories.make_member(tenant, "owner5", "owner")
    response = approve(factories.user_client(tenant, owner), answer["approval"]["id"])
    assert_problem(response, 409, "APPROVAL_RESOLVED")
    assert ApprovalRequest.objects.get(pk=answer["approval"]["id"]).state == "cancelled"


def test_commit_before_approval_is_recorded_flagged_and_closes_the_request(
    client_a, tenant, budget
):
    """Spend reported while approvers are still deciding: never dropped, never silent."""
    from prometheus_client import REGISTRY

    def violations():
        return REGISTRY.get_sample_value("budget_invariant_violations_total") or 0.0

    answer = pending_approval(client_a)
    reservation_id = answer["reservation"]["id"]
    before = violations()
    response = client_a.post(
        f"/api/v1/reservations/{reservation_id}/commit",
        {"actual_cost_usd": "120.00"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "committed"
    period = BudgetPeriod.objects.get(budget=budget)
    assert period.spent_micros == 120_000_000 and period.reserved_micros == 0
    request = ApprovalRequest.objects.get(pk=answer["approval"]["id"])
    assert request.state == "cancelled"
    flagged = LedgerEntry.objects.get(kind="invariant_violation")
    assert flagged.payload["kind"] == "commit_before_approval"
    assert flagged.payload["approval"] == request.id
    assert LedgerEntry.objects.filter(
        kind="approval.cancelled", payload__reason="committed before approval"
    ).exists()
    assert OutboxEvent.objects.filter(
        event_type="approval.resolved", payload__approval_id=request.id
    ).exists()
    assert violations() == before + 1
    # An approver arriving now finds nothing left to approve.
    owner = factories.make_member(tenant, "owner6", "owner")
    assert_problem(
        approve(factories.user_client(tenant, owner), request.id), 409, "APPROVAL_RESOLVED"
    )
    assert verify_ledger(tenant_id=tenant.id).ok


def test_the_requesting_key_can_withdraw_its_request(client_a, tenant, budget):
    answer = pending_approval(client_a)
    approval_id = answer["approval"]["id"]
    assert BudgetPeriod.objects.get(budget=budget).reserved_micros == 150_000_000
    response = client_a.post(
        f"/api/v1/approvals/{approval_id}/cancel", {"reason": "pipeline aborted"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert BudgetPeriod.objects.get(budget=budget).reserved_micros == 0  # the hold is released
    assert Reservation.objects.get(pk=answer["reservation"]["id"]).state == "released"
    entry = LedgerEntry.objects.get(kind="approval.cancelled")
    assert "pipeline aborted" in entry.payload["reason"] and entry.payload["released"]
    assert OutboxEvent.objects.filter(
        event_type="approval.resolved", payload__approval_id=approval_id
    ).exists()
    again = client_a.post(f"/api/v1/approvals/{approval_id}/cancel", {}, format="json")
    assert_problem(again, 409, "APPROVAL_RESOLVED")
    assert verify_ledger(tenant_id=tenant.id).ok


def test_only_requester_owner_or_admin_may_cancel(client_a, tenant, budget):
    answer = pending_approval(client_a)
    approval_id = answer["approval"]["id"]
    member = factories.make_member(tenant, "bystander", "member")
    refused = factories.user_client(tenant, member).post(
        f"/api/v1/approvals/{approval_id}/cancel", {}, format="json"
    )
    assert_problem(refused, 403, "APPROVER_NOT_AUTHORIZED")
    admin = factories.make_member(tenant, "admin7", "admin")
    done = factories.user_client(tenant, admin).post(
        f"/api/v1/approvals/{approval_id}/cancel", {"reason": "wrong project"}, format="json"
    )
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    reason = LedgerEntry.objects.get(kind="approval.cancelled").payload["reason"]
    assert reason == "admin:admin7: wrong project"


def test_cancel_rejects_unknown_fields(client_a, tenant, budget):
    answer = pending_approval(client_a)
    response = client_a.post(
        f"/api/v1/approvals/{answer['approval']['id']}/cancel", {"why": "x"}, format="json"
    )
    assert_problem(response, 400, "VALIDATION_FAILED")


def test_one_vote_per_user_is_a_database_constraint(client_a, tenant, budget):
    answer = pending_approval(client_a)
    user = factories.make_member(tenant, "voter", "owner")
    request = ApprovalRequest.objects.get(pk=answer["approval"]["id"])
    ApprovalVote.objects.create(
        request=request, user=user, vote="approve", created_at=request.created_at
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalVote.objects.create(
            request=request, user=user, vote="deny", created_at=request.created_at
        )


# --- continuation through the gate --------------------------------------------------------------


def test_ci_rerun_with_token_continues_and_is_idempotent(client_a, tenant, budget):
    key = f"ci-run-{uuid.uuid4().hex[:8]}"
    answer, token = approved_token(tenant, client_a, key=key)
    # Re-running the same CI step without the token replays the stored REQUIRE_APPROVAL with
    # the live approval status, and hands the requester key the token until it is used.
    replay = gate(client_a, key=key)
    assert replay.status_code == 200 and replay.json()["outcome"] == "REQUIRE_APPROVAL"
    assert replay.json()["approval"]["status"] == "approved"
    assert replay.json()["approval"]["token"] == token
    assert gate(client_a, key=key).json()["approval"]["token"] == token  # a retried poll

    rerun = gate(client_a, key=key, approval_token=token)
    assert rerun.status_code == 201, rerun.content
    body = rerun.json()
    assert body["outcome"] == "ALLOW" and body["reason_code"] == "APPROVED"
    assert body["continues_decision_id"] == answer["decision_id"]
    assert body["decision_id"] != answer["decision_id"]
    assert body["reservation"]["id"] == answer["reservation"]["id"]
    assert body["reservation"]["state"] == "pending"
    assert body["approval"]["status"] == "approved"
    assert reserved(budget) == 150_000_000  # the held money is handed over, not drawn twice

    again = gate(client_a, key=key, approval_token=token)  # a CI retry of the same step
    assert again.status_code == 200 and again.json()["idempotent_replay"] is True
    assert again.json()["decision_id"] == body["decision_id"]

    other_step = gate(client_a, key="another-step", approval_token=token)
    assert_problem(other_step, 409, "TOKEN_ALREADY_CONSUMED")

    commit = client_a.post(
        f"/api/v1/reservations/{body['reservation']['id']}/commit",
        {"actual_cost_usd": "140.00"},
        format="json",
    )
    assert commit.status_code == 200, commit.content
    period = BudgetPeriod.objects.get(budget=budget)
    assert period.reserved_micros == 0 and period.spent_micros == 140_000_000
    assert "approval.token_consumed" in control_kinds(tenant)
    assert control_kinds(tenant).count("approval.token_retrieved") == 1  # the first hand-over
    assert gate(client_a, key=key).json()["approval"]["token"] is None  # used: never again
    assert verify_ledger(tenant_id=tenant.id).ok


def test_unbudgeted_request_needs_approval_without_a_hold(client_a, tenant):
    factories.make_project(tenant, "payments")
    factories.require_approval_above(tenant, "100.00")
    answer, token = approved_token(tenant, client_a)
    assert answer["reservation"] is None  # nothing to hold: no budget covers it
    body = gate(client_a, approval_token=token).json()
    assert body["outcome"] == "ALLOW" and body["reason_code"] == "APPROVED"
    assert body["reservation"] is None


def test_token_for_another_request_is_rejected_by_the_gate(client_a, tenant, budget):
    _, token = approved_token(tenant, client_a)
    changed = gate(client_a, approval_token=token, estimated_cost_usd="151.00")
    body = assert_problem(changed, 401, "TOKEN_INVALID")
    assert "fingerprint" in body["detail"]


def test_requester_key_fetches_the_token_until_it_is_used(client_a, tenant, budget):
    key = uuid.uuid4().hex
    answer = pending_approval(client_a, key=key)
    approval_id = answer["approval"]["id"]
    polled = gate(client_a, key=key).json()["approval"]
    assert polled["status"] == "pending" and "token" not in polled
    owner = factories.make_member(tenant, "owner6", "owner")
    voted = approve(factories.user_client(tenant, owner), approval_id).json()
    first = client_a.get(f"/api/v1/approvals/{approval_id}").json()
    assert first["token"] == voted["token"]  # deterministic re-signing of the stored claims
    assert first["token_retrieved_at"] is not None
    # A status check (GET) does not use it up: the pipeline's poll still gets it.
    second = client_a.get(f"/api/v1/approvals/{approval_id}").json()
    assert second["token"] == voted["token"]
    assert second["token_retrieved_at"] == first["token_retrieved_at"]
    assert gate(client_a, key=key).json()["approval"]["token"] == voted["token"]
    other_key = factories.user_client(tenant, owner)
    assert other_key.get(f"/api/v1/approvals/{approval_id}").json()["token"] is None
    # Once consumed, nobody gets it again.
    assert gate(client_a, key=key, approval_token=voted["token"]).status_code == 201
    assert client_a.get(f"/api/v1/approvals/{approval_id}").json()["token"] is None


def test_expired_token_is_not_handed_out(client_a, tenant, budget):
    from enforcement.models import ApprovalToken

    key = uuid.uuid4().hex
    answer = pending_approval(client_a, key=key)
    owner = factories.make_member(tenant, "owner7", "owner")
    approve(factories.user_client(tenant, owner), answer["approval"]["id"])
    record = ApprovalToken.objects.get(request_id=answer["approval"]["id"])
    ApprovalToken.objects.filter(pk=record.pk).update(
        issued_at=record.issued_at - timedelta(days=3),
        expires_at=record.issued_at - timedelta(days=2),
    )
    assert gate(client_a, key=key).json()["approval"]["token"] is None


def test_admin_actions_call_the_services(client, tenant, client_a, budget):
    answer = pending_approval(client_a)
    root = factories.make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    changelist = "/admin/enforcement/approvalrequest/"
    response = client.post(
        changelist,
        {"action": "approve", "_selected_action": [answer["approval"]["id"]]},
        follow=True,
    )
    assert response.status_code == 200
    assert "not a member" in response.content.decode()  # the service checked authority
    from controlplane.tenancy.services import membership_set

    membership_set(tenant=tenant, user=root, role="owner")
    client.post(changelist, {"action": "approve", "_selected_action": [answer["approval"]["id"]]})
    request = ApprovalRequest.objects.get(pk=answer["approval"]["id"])
    assert request.state == "approved" and request.votes.get().via == "admin"
    assert client.get(f"{changelist}{request.id}/change/").status_code == 200


def test_operator_cancels_from_the_admin(client_a, tenant, budget):
    from django.contrib.auth import get_user_model
    from django.test import Client

    answer = pending_approval(client_a)
    root = get_user_model().objects.create_superuser("root9", "root9@example.com", "pw-9-long")
    client = Client()
    client.force_login(root)
    changelist = "/admin/enforcement/approvalrequest/"
    response = client.post(
        changelist, {"action": "cancel", "_selected_action": [answer["approval"]["id"]]}
    )
    assert response.status_code == 302
    assert ApprovalRequest.objects.get(pk=answer["approval"]["id"]).state == "cancelled"
    assert Reservation.objects.get(pk=answer["reservation"]["id"]).state == "released"
    reason = LedgerEntry.objects.get(kind="approval.cancelled").payload["reason"]
    assert reason.startswith("operator:root9")


def test_lists_never_cross_tenants(client_a, tenant, other_tenant, budget):
    pending_approval(client_a)
    outsider = factories.make_member(other_tenant, "outsider2", "owner")
    outsider_client = factories.user_client(other_tenant, outsider)
    for status in ("pending", "approved"):
        listed = outsider_client.get(f"/api/v1/approvals?status={status}")
        assert listed.status_code == 200 and listed.json()["results"] == []


class TestApprovalTenantIsolation(TenantIsolationContract):
    isolation_cases = [
        IsolationCase(
            name="approval-detail",
            method="GET",
            make=lambda tenant: _approval(tenant),
            path=lambda obj: f"/api/v1/approvals/{obj.pk}",
        ),
        IsolationCase(
            name="approval-approve",
            method="POST",
            make=lambda tenant: _approval(tenant),
            path=lambda obj: f"/api/v1/approvals/{obj.pk}/approve",
            ok_status=403,  # tenant A's key is not bound to a user: found, then refused
        ),
        IsolationCase(
            name="approval-deny",
            method="POST",
            make=lambda tenant: _approval(tenant),
            path=lambda obj: f"/api/v1/approvals/{obj.pk}/deny",
            ok_status=403,
        ),
        IsolationCase(
            name="approval-cancel",
            method="POST",
            make=lambda tenant: _approval(tenant),
            path=lambda obj: f"/api/v1/approvals/{obj.pk}/cancel",
            ok_status=403,  # found, but tenant A's key did not ask for it
        ),
    ]


def _approval(tenant):
    from enforcement.services.gate import GateRequest, gate_decide

    if not tenant.projects.filter(slug="iso").exists():
        factories.make_project(tenant, "iso")
    factories.require_approval_above(tenant, "1.00")
    result = gate_decide(
        tenant=tenant,
        api_key=None,
        req=GateRequest(
            source="api",
            idempotency_key=uuid.uuid4().hex,
            project="iso",
            environment="prod",
            estimated_micros=5_000_000,
        ),
    )
    return ApprovalRequest.objects.get(pk=result.response["approval"]["id"])


def test_pending_list_costs_a_fixed_number_of_queries(client_a, tenant, budget):
    """One selector for the API list and the dashboard queue: 1 pending or 12, same queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    group = ApproverGroup.objects.create(tenant=tenant, name="finops")
    approver = factories.make_member(tenant, "counted", "member")
    group.members.add(approver)
    approver_client = factories.user_client(tenant, approver)

    def listed_queries() -> tuple[int, int]:
        approver_client.get("/api/v1/approvals")  # the key's last-use stamp is written once
        with CaptureQueriesContext(connection) as queries:
            response = approver_client.get("/api/v1/approvals?status=pending")
        assert response.status_code == 200
        return len(response.json()["results"]), len(queries)

    # Routed to the group by the policy's default approvers.
    from tests.enforcement.helpers import publish_policy

    publish_policy(
        tenant,
        {
            "version": 1,
            "approval": {
                "threshold_usd": "10",
                "approvers": {"groups": ["finops"], "roles": ["owner"]},
            },
        },
    )
    pending_approval(client_a, estimated_cost_usd="20.00")
    one, one_queries = listed_queries()
    for _ in range(11):
        pending_approval(client_a, estimated_cost_usd="20.00")
    many, many_queries = listed_queries()
    assert (one, many) == (1, 12)
    assert many_queries == one_queries
