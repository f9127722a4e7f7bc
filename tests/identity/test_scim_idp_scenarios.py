"""SCIM as identity providers drive it, end to end with approval routing.

Okta: create users, push a group, add members, the group approves a request, deactivate with
``{"op": "replace", "value": {"active": false}}`` (no path), the vote is gone and the request
is counted again, keys and sessions end, reactivation restores membership but not keys.
Entra ID: enterprise extension, "Replace"/"Add" ops, no-path values keyed by attribute paths,
filtered paths that create values, ``remove`` with a value, string booleans, DELETE.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from controlplane.audit.models import LedgerEntry
from controlplane.audit.verify import verify_ledger
from controlplane.identity.models import ApproverGroup, ScimUser, UserSession
from controlplane.identity.services import people
from controlplane.tenancy.models import ApiKey, Membership
from controlplane.tenancy.services import membership_set
from enforcement.models import ApprovalRequest, ApprovalVote
from enforcement.services.approvals import approval_vote
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.approval_helpers import approve, pending_approval
from tests.enforcement.helpers import set_gate_settings
from tests.identity.scim_helpers import (
    ENTERPRISE,
    GROUP_SCHEMA,
    USER_SCHEMA,
    ScimClient,
    patch_op,
    scim_token,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def budget(tenant):
    project = factories.make_project(tenant, "payments")
    factories.require_approval_above(tenant, "100.00")
    set_gate_settings(tenant, approvers={"roles": [], "groups": ["finops"], "quorum": 2})
    return factories.make_budget(tenant, "1000.00", project=project)


@pytest.fixture
def scim(tenant) -> ScimClient:
    return ScimClient(scim_token(tenant))


def control(tenant, kind: str) -> list[dict]:
    return list(
        LedgerEntry.objects.filter(chain=f"control:{tenant.id}", kind=kind)
        .order_by("seq")
        .values_list("payload", flat=True)
    )


def okta_user(scim: ScimClient, login: str, external_id: str) -> dict:
    """Okta's import check, then its create body."""
    found = scim.get(f'/Users?filter=userName eq "{login}"&startIndex=1&count=100')
    assert found.status_code == 200 and found.json()["totalResults"] == 0, found.content
    given, _, _ = login.partition("@")
    response = scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": login,
            "name": {"givenName": given.title(), "familyName": "Example"},
            "emails": [{"primary": True, "value": login, "type": "work"}],
            "displayName": f"{given.title()} Example",
            "locale": "en-US",
            "externalId": external_id,
            "groups": [],
            "active": True,
        },
    )
    assert response.status_code == 201, response.content
    assert response["Location"].endswith(f"/scim/v2/Users/{response.json()['id']}")
    return response.json()


def account(scim_id: str):
    return ScimUser.objects.select_related("user").get(pk=scim_id).user


def test_okta_group_approves_then_deactivation_withdraws_the_vote(tenant, client_a, budget, scim):
    alice = okta_user(scim, "alice@acme.example", "00u1alice")
    bob = okta_user(scim, "bob@acme.example", "00u1bob")
    carol = okta_user(scim, "carol@acme.example", "00u1carol")
    assert Membership.objects.get(tenant=tenant, user=account(alice["id"])).role == "member"

    # Okta "push group": look up by name, create, then add members with a PATCH.
    assert scim.get('/Groups?filter=displayName eq "finops"').json()["totalResults"] == 0
    created = scim.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "finops", "members": []}
    )
    assert created.status_code == 201, created.content
    group_id = created.json()["id"]
    added = scim.patch(
        f"/Groups/{group_id}",
        patch_op(
            {
                "op": "add",
                "path": "members",
                "value": [
                    {"value": alice["id"], "display": "alice@acme.example"},
                    {"value": bob["id"], "display": "bob@acme.example"},
                ],
            }
        ),
    )
    assert added.status_code == 200, added.content
    assert {m["value"] for m in added.json()["members"]} == {alice["id"], bob["id"]}
    assert scim.get(f"/Users/{alice['id']}").json()["groups"][0]["display"] == "finops"

    # The group approves through the approvals API: alice with her key, bob from a session.
    answer = pending_approval(client_a)
    approval_id = answer["approval"]["id"]
    alice_client = factories.user_client(tenant, account(alice["id"]))
    first = approve(alice_client, approval_id)
    assert first.status_code == 200 and first.json()["status"] == "pending", first.content
    alice_browser = APIClient()
    alice_browser.force_login(account(alice["id"]))
    assert alice_browser.get("/api/v1/approvals").status_code == 200
    assert UserSession.objects.filter(user_id=str(account(alice["id"]).pk)).count() == 1

    # Okta deactivates alice: replace with no path.
    deactivated = scim.patch(
        f"/Users/{alice['id']}", patch_op({"op": "replace", "value": {"active": False}})
    )
    assert deactivated.status_code == 200, deactivated.content
    assert deactivated.json()["active"] is False

    assert not ApprovalVote.objects.filter(request_id=approval_id).exists()  # the vote is gone
    assert ApprovalRequest.objects.get(pk=approval_id).state == "pending"
    withdrawn = control(tenant, "approval.vote_withdrawn")
    assert withdrawn == [
        {
            "approval": approval_id,
            "decision": answer["decision_id"],
            "vote": withdrawn[0]["vote"],
            "user": account(alice["id"]).pk,
            "value": "approve",
            "reason": "scim:active_false",
            "approvals": 0,
            "required": 2,
        }
    ]
    assert not Membership.objects.filter(tenant=tenant, user=account(alice["id"])).exists()
    assert ApiKey.objects.get(user=account(alice["id"])).revoked_at is not None
    assert_problem(alice_client.get("/api/v1/approvals"), 401, "API_KEY_REVOKED")
    assert not UserSession.objects.filter(user_id=str(account(alice["id"]).pk)).exists()
    assert alice_browser.get("/api/v1/approvals").status_code in (401, 403)
    summary = control(tenant, "scim.user.deprovisioned")[-1]
    assert summary["votes_withdrawn"] == [withdrawn[0]["vote"]]
    assert summary["sessions_ended"] == 1 and summary["membership_role"] == "member"
    assert summary["account_deactivated"] is True

    # Quorum is counted again: bob's approval alone is not enough any more; carol joins and
    # her approval completes it (membership changes take effect at once).
    assert (
        approve(factories.user_client(tenant, account(bob["id"])), approval_id).json()["status"]
        == "pending"
    )
    scim.patch(
        f"/Groups/{group_id}",
        patch_op({"op": "add", "path": "members", "value": [{"value": carol["id"]}]}),
    )
    final = approve(factories.user_client(tenant, account(carol["id"])), approval_id)
    assert final.status_code == 200 and final.json()["status"] == "approved", final.content
    assert verify_ledger().ok


def test_reactivation_restores_membership_not_keys(tenant, client_a, budget, scim):
    alice = okta_user(scim, "alice@acme.example", "00u1alice")
    user = account(alice["id"])
    factories.make_api_key(tenant, user=user, name="alice laptop")
    scim.patch(f"/Users/{alice['id']}", patch_op({"op": "replace", "value": {"active": False}}))
    user.refresh_from_db()
    assert user.is_active is False  # SCIM made this account and it belongs to no tenant now

    back = scim.patch(
        f"/Users/{alice['id']}", patch_op({"op": "replace", "path": "active", "value": True})
    )
    assert back.status_code == 200 and back.json()["active"] is True
    user.refresh_from_db()
    assert user.is_active is True
    assert Membership.objects.get(tenant=tenant, user=user).role == "member"
    assert ApiKey.objects.get(user=user, name="alice laptop").revoked_at is not None
    kinds = [e for e in control(tenant, "scim.user.reactivated")]
    assert kinds == [{"scim_user": alice["id"], "user": user.pk, "role": "member"}]


def test_removing_a_member_takes_authority_away_at_once(tenant, client_a, budget, scim):
    set_gate_settings(tenant, approvers={"roles": [], "groups": ["finops"], "quorum": 1})
    bob = okta_user(scim, "bob@acme.example", "00u1bob")
    group_id = scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "finops", "members": [{"value": bob["id"]}]},
    ).json()["id"]
    answer = pending_approval(client_a)
    removed = scim.patch(
        f"/Groups/{group_id}",
        patch_op({"op": "remove", "path": f'members[value eq "{bob["id"]}"]'}),
    )
    assert removed.status_code == 200 and "members" not in removed.json()
    response = approve(factories.user_client(tenant, account(bob["id"])), answer["approval"]["id"])
    assert_problem(response, 403, "APPROVER_NOT_AUTHORIZED")
    change = control(tenant, "approver_group.updated")[-1]
    assert change["members_removed"] == [account(bob["id"]).pk] and change["members_added"] == []


def test_deprovisioning_is_all_or_nothing(tenant, client_a, budget, scim, monkeypatch):
    alice = okta_user(scim, "alice@acme.example", "00u1alice")
    group = scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "finops", "members": [{"value": alice["id"]}]},
    )
    assert group.status_code == 201
    answer = pending_approval(client_a)
    user = account(alice["id"])
    key, _ = factories.make_api_key(tenant, user=user)
    approve(factories.user_client(tenant, user), answer["approval"]["id"])
    browser = APIClient()
    browser.force_login(user)

    real = people.ledger_append_control

    def fail_at_the_end(**kwargs):
        if kwargs["kind"] == "scim.user.deprovisioned":
            raise RuntimeError("boom after every step but the last")
        return real(**kwargs)

    monkeypatch.setattr(people, "ledger_append_control", fail_at_the_end)
    failed = scim.patch(
        f"/Users/{alice['id']}", patch_op({"op": "replace", "value": {"active": False}})
    )
    assert failed.status_code == 500 and failed.json()["status"] == "500"
    assert Membership.objects.filter(tenant=tenant, user=user).exists()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert ApprovalVote.objects.filter(request_id=answer["approval"]["id"], user=user).exists()
    assert UserSession.objects.filter(user_id=str(user.pk)).exists()
    assert ScimUser.objects.get(pk=alice["id"]).active is True
    assert not control(tenant, "approval.vote_withdrawn")


def test_a_deprovisioned_person_cannot_vote_even_with_a_new_key(tenant, client_a, budget, scim):
    alice = okta_user(scim, "alice@acme.example", "00u1alice")
    scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "finops", "members": [{"value": alice["id"]}]},
    )
    answer = pending_approval(client_a)
    scim.patch(f"/Users/{alice['id']}", patch_op({"op": "replace", "value": {"active": False}}))
    with pytest.raises(Exception) as refused:
        approval_vote(
            approval_id=answer["approval"]["id"],
            tenant_id=tenant.id,
            user=account(alice["id"]),
            vote="approve",
        )
    assert getattr(refused.value, "code", None) == "APPROVER_NOT_AUTHORIZED"


def test_entra_provisioning_cycle(tenant, client_a, budget, scim):
    # "Test connection": a filter for a user that does not exist.
    probe = scim.get('/Users?filter=userName eq "a1b2c3d4-0000-4000-8000-000000000000"')
    assert probe.status_code == 200 and probe.json()["totalResults"] == 0
    created = scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "externalId": "dana",
            "userName": "dana@contoso.example",
            "active": True,
            "displayName": "Dana Contoso",
            "emails": [{"primary": True, "type": "work", "value": "dana@contoso.example"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "Dana C", "familyName": "Contoso", "givenName": "Dana"},
            "title": "FinOps lead",
            ENTERPRISE: {"employeeNumber": "42", "department": "Finance"},
            "urn:ietf:params:scim:schemas:extension:custom:2.0:User": {"worksiteId": "180"},
        },
    )
    assert created.status_code == 201, created.content
    dana = created.json()
    assert dana[ENTERPRISE] == {"employeeNumber": "42", "department": "Finance"}
    assert "urn:ietf:params:scim:schemas:extension:custom:2.0:User" not in dana
    assert dana["schemas"] == [USER_SCHEMA, ENTERPRISE]

    changed = scim.patch(
        f"/Users/{dana['id']}",
        patch_op(
            {
                "op": "Replace",
                "value": {"name.formatted": "Dana Contoso", "name.familyName": "Contoso-Smith"},
            },
            {"op": "Add", "path": 'emails[type eq "home"].value', "value": "dana@home.example"},
            {"op": "Replace", "path": "title", "value": "Head of FinOps"},
            {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": "boss-id"},
            {
                "op": "Add",
                "path": "urn:ietf:params:scim:schemas:extension:custom:2.0:User:x",
                "value": "1",
            },
        ),
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["name"] == {
        "formatted": "Dana Contoso",
        "familyName": "Contoso-Smith",
        "givenName": "Dana",
    }
    assert {"type": "home", "value": "dana@home.example"} in body["emails"]
    assert body[ENTERPRISE]["manager"] == {"value": "boss-id"}
    assert body["title"] == "Head of FinOps"

    group = scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "externalId": "0fa1", "displayName": "finops", "members": []},
    ).json()
    assert scim.patch(
        f"/Groups/{group['id']}",
        patch_op({"op": "Add", "path": "members", "value": [{"value": dana["id"]}]}),
    ).json()["members"] == [
        {
            "value": dana["id"],
            "$ref": f"http://testserver/scim/v2/Users/{dana['id']}",
            "type": "User",
        }
    ]
    assert (
        ApproverGroup.objects.get(pk=group["id"]).members.filter(pk=account(dana["id"]).pk).exists()
    )
    removed = scim.patch(
        f"/Groups/{group['id']}",
        patch_op({"op": "Remove", "path": "members", "value": [{"value": dana["id"]}]}),
    )
    assert removed.status_code == 200 and "members" not in removed.json()

    # Entra's older boolean-as-string, then DELETE.
    disabled = scim.patch(
        f"/Users/{dana['id']}", patch_op({"op": "Replace", "path": "active", "value": "False"})
    )
    assert disabled.json()["active"] is False
    scim.patch(
        f"/Groups/{group['id']}",
        patch_op({"op": "Add", "path": "members", "value": [{"value": dana["id"]}]}),
    )
    assert scim.delete(f"/Users/{dana['id']}").status_code == 204
    assert scim.get(f"/Users/{dana['id']}").status_code == 404
    assert "members" not in scim.get(f"/Groups/{group['id']}").json()
    deleted = control(tenant, "scim.user.deleted")
    assert deleted == [
        {"scim_user": dana["id"], "user": deleted[0]["user"], "groups_left": [group["id"]]}
    ]


def test_existing_member_is_linked_not_duplicated(tenant, scim):
    existing = factories.make_member(tenant, "erin", "admin", email="erin@acme.example")
    created = scim.post(
        "/Users", {"schemas": [USER_SCHEMA], "userName": "Erin@Acme.example", "active": True}
    )
    assert created.status_code == 201
    scim_user = ScimUser.objects.get(pk=created.json()["id"])
    assert scim_user.user_id == existing.pk and scim_user.owns_user is False
    assert scim_user.restore_role == "admin"
    scim.patch(f"/Users/{scim_user.pk}", patch_op({"op": "replace", "value": {"active": False}}))
    existing.refresh_from_db()
    assert existing.is_active is True  # a linked account may belong to other tenants
    assert existing.username == "erin"
    scim.patch(f"/Users/{scim_user.pk}", patch_op({"op": "replace", "value": {"active": True}}))
    assert Membership.objects.get(tenant=tenant, user=existing).role == "admin"


def test_staff_accounts_are_never_linked(tenant, scim, django_user_model):
    operator = django_user_model.objects.create_superuser("root", "root@acme.example", "pw-12345!")
    membership_set(tenant=tenant, user=operator, role="owner")
    created = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "root@acme.example"})
    assert created.status_code == 201
    assert ScimUser.objects.get(pk=created.json()["id"]).user_id != operator.pk


def test_deprovisioning_revokes_the_keys_a_persons_keys_issued(tenant, scim):
    """One revocation path for SCIM and the API: the person's keys and, through them, every key
    they issued; a service key the person was only accountable for keeps working."""
    from controlplane.tenancy.services import api_key_issue

    alice = okta_user(scim, "alice@acme.example", "00u1alice")
    user = account(alice["id"])
    laptop, _ = factories.make_api_key(tenant, user=user, name="alice laptop")
    child, _ = api_key_issue(tenant=tenant, name="ci", scopes=["gate:write"], parent=laptop)
    grandchild, _ = api_key_issue(tenant=tenant, name="ci-2", scopes=["gate:write"], parent=child)
    service, _ = api_key_issue(tenant=tenant, name="svc", scopes=["gate:write"], created_by=user)
    scim.patch(f"/Users/{alice['id']}", patch_op({"op": "replace", "value": {"active": False}}))
    revoked = {k.pk for k in ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=False)}
    assert revoked == {laptop.pk, child.pk, grandchild.pk}
    [summary] = control(tenant, "scim.user.deprovisioned")
    assert sorted(summary["api_keys_revoked"]) == sorted(revoked)
    cascaded = {e["api_key"]: e["cascade_from"] for e in control(tenant, "api_key.revoked")}
    assert cascaded == {laptop.pk: None, child.pk: laptop.pk, grandchild.pk: laptop.pk}
    assert ApiKey.objects.get(pk=service.pk).revoked_at is None
