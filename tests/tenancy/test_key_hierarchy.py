"""A key cannot widen itself (issue 17 item 3): what it issues stays inside its scopes, binding,
person and lifetime; every key records who is accountable for it; separation of duties follows
that chain; a person's keys stop working when the person is deactivated or leaves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.audit.models import LedgerEntry
from controlplane.tenancy import services
from controlplane.tenancy.models import ApiKey, Membership
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.approval_helpers import approve, pending_approval

pytestmark = pytest.mark.django_db
KEYS = "/api/v1/api-keys"


def client_for(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def payments(tenant):
    return factories.make_project(tenant, "payments")


@pytest.fixture
def bound(tenant, payments):
    """$PK of the issue: bound to payments/dev, expiring, may issue keys."""
    key, plaintext = factories.make_api_key(
        tenant,
        scopes=["api_keys:read", "api_keys:write", "gate:write", "budgets:write"],
        project=payments,
        environment="dev",
        expires_at=timezone.now() + timedelta(days=7),
    )
    return key, client_for(plaintext)


def issue(client, **body):
    body.setdefault("name", "child")
    return client.post(KEYS, body, format="json")


def test_a_child_inherits_binding_and_lifetime(bound):
    parent, client = bound
    response = issue(client, scopes=["gate:write"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["project"], body["environment"]) == ("payments", "dev")
    assert body["parent"] == parent.id
    child = ApiKey.objects.get(pk=body["id"])
    assert child.expires_at == parent.expires_at and child.parent_id == parent.id


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"scopes": ["gate:write", "ledger:read"]}, "SCOPE_ESCALATION", "scopes"),
        ({"scopes": ["gate:write"], "project": "search"}, "BINDING_ESCALATION", "project"),
        ({"scopes": ["gate:write"], "environment": "prod"}, "BINDING_ESCALATION", "environment"),
        (
            {"scopes": ["gate:write"], "expires_at": "2099-01-01T00:00:00Z"},
            "LIFETIME_ESCALATION",
            "expires_at",
        ),
    ],
)
def test_a_key_cannot_issue_a_wider_key(tenant, bound, body, code, field):
    factories.make_project(tenant, "search")
    _, client = bound
    before = ApiKey.objects.count()
    problem = assert_problem(issue(client, **body), 403, code)
    assert problem["errors"][0]["field"] == field
    assert ApiKey.objects.count() == before


def test_the_issue_17_escape_is_closed(tenant, bound):
    """$PK minting an unbound, non-expiring key with api_keys:write."""
    _, client = bound
    response = issue(client, scopes=["api_keys:write"], project=None, environment="")
    assert response.status_code == 201  # but it is bound and expiring like its parent
    body = response.json()
    assert (body["project"], body["environment"], body["expires_at"]) == (
        "payments",
        "dev",
        ApiKey.objects.get(pk=bound[0].pk).expires_at.isoformat().replace("+00:00", "Z"),
    )


def test_the_api_can_never_bind_a_key_to_another_person(tenant, client_a):
    bob = factories.make_member(tenant, "bob")
    response = issue(client_a, scopes=["gate:write"], user=bob.pk)
    assert assert_problem(response, 400, "VALIDATION_FAILED")["errors"][0]["field"] == "user"


def test_a_child_of_a_persons_key_acts_as_that_person(tenant):
    alice = factories.make_member(tenant, "alice", "admin")
    _, plaintext = factories.make_api_key(
        tenant, scopes=["api_keys:write", "gate:write"], user=alice
    )
    body = issue(client_for(plaintext), scopes=["gate:write"]).json()
    child = ApiKey.objects.get(pk=body["id"])
    assert child.user_id == alice.pk and child.created_by_id == alice.pk
    assert body["user"] == "alice" and body["created_by"] == "alice"


def test_the_accountable_person_is_inherited_down_the_chain(tenant):
    bob = factories.make_member(tenant, "bob", "admin")
    root, plaintext = services.api_key_issue(
        tenant=tenant, name="ci", scopes=["api_keys:write", "gate:write"], created_by=bob
    )
    child_body = issue(client_for(plaintext), scopes=["api_keys:write", "gate:write"]).json()
    child = ApiKey.objects.get(pk=child_body["id"])
    assert (child.user_id, child.created_by_id, child.parent_id) == (None, bob.pk, root.pk)
    entry = LedgerEntry.objects.get(kind="api_key.issued", payload__api_key=child.pk)
    assert entry.payload["parent"] == root.pk and entry.payload["created_by"] == bob.pk


def test_revoking_a_key_revokes_what_it_issued(tenant, client_a):
    parent, plaintext = factories.make_api_key(tenant, scopes=["api_keys:write", "gate:write"])
    child_id = issue(client_for(plaintext), scopes=["api_keys:write", "gate:write"]).json()["id"]
    child = ApiKey.objects.get(pk=child_id)
    grandchild, grand_plain = services.api_key_issue(
        tenant=tenant, name="g", scopes=["gate:write"], parent=child
    )
    assert client_a.delete(f"{KEYS}/{parent.id}").status_code == 204
    assert (
        ApiKey.objects.filter(pk__in=[parent.pk, child.pk, grandchild.pk])
        .exclude(revoked_at=None)
        .count()
        == 3
    )
    assert_problem(client_for(grand_plain).get(KEYS), 401, "API_KEY_REVOKED")
    cascade = LedgerEntry.objects.filter(kind="api_key.revoked", payload__cascade_from=parent.pk)
    assert {e.payload["api_key"] for e in cascade} == {child.pk, grandchild.pk}


def test_a_key_revokes_only_keys_it_could_have_issued(tenant, bound, payments):
    _, client = bound
    wider, _ = factories.make_api_key(
        tenant, scopes=["gate:write", "ledger:read"], project=payments, environment="dev"
    )
    assert_problem(client.delete(f"{KEYS}/{wider.id}"), 403, "SCOPE_ESCALATION")
    tenant_wide, _ = factories.make_api_key(tenant, scopes=["gate:write"])
    assert_problem(client.delete(f"{KEYS}/{tenant_wide.id}"), 404, "NOT_FOUND")
    sibling, _ = factories.make_api_key(
        tenant, scopes=["gate:write"], project=payments, environment="dev"
    )
    assert client.delete(f"{KEYS}/{sibling.id}").status_code == 204


# --- separation of duties follows the chain ----------------------------------------------------


def test_the_two_person_rule_cannot_be_bypassed_through_a_minted_key(tenant, payments):
    """Issue 17 item 5: alice mints a gate:write key with her personal key, requests through it,
    then tries to approve her own request with the personal key."""
    factories.require_approval_above(tenant, "100.00")
    factories.make_budget(tenant, "1000.00", project=payments)
    alice = factories.make_member(tenant, "alice", "owner")
    _, personal = factories.make_api_key(
        tenant,
        scopes=["api_keys:write", "gate:write", "approvals:read", "approvals:write"],
        user=alice,
    )
    minted = issue(client_for(personal), scopes=["gate:write"]).json()
    answer = pending_approval(client_for(minted["key"]), requester="")
    assert_problem(
        approve(client_for(personal), answer["approval"]["id"]), 403, "APPROVER_IS_REQUESTER"
    )
    bob = factories.make_member(tenant, "bob", "owner")
    assert approve(factories.user_client(tenant, bob), answer["approval"]["id"]).status_code == 200


def test_the_creator_of_a_service_key_cannot_approve_its_requests(tenant, payments):
    factories.require_approval_above(tenant, "100.00")
    factories.make_budget(tenant, "1000.00", project=payments)
    bob = factories.make_member(tenant, "bob", "owner")
    _, service = services.api_key_issue(
        tenant=tenant, name="ci", scopes=["api_keys:write", "gate:write"], created_by=bob
    )
    grandchild = issue(client_for(service), scopes=["gate:write"]).json()["key"]
    answer = pending_approval(client_for(grandchild), requester="")
    assert_problem(
        approve(factories.user_client(tenant, bob), answer["approval"]["id"]),
        403,
        "APPROVER_IS_REQUESTER",
    )


# --- a person's keys end with the person -------------------------------------------------------


def test_keys_of_a_deactivated_person_stop_working(tenant):
    alice = factories.make_member(tenant, "alice", "admin")
    _, plaintext = factories.make_api_key(
        tenant, scopes=["tenant:read", "api_keys:write"], user=alice
    )
    child = issue(client_for(plaintext), scopes=["tenant:read"]).json()["key"]
    assert client_for(child).get("/api/v1/tenant").status_code == 200
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    for key in (plaintext, child):
        assert_problem(client_for(key).get("/api/v1/tenant"), 401, "API_KEY_USER_INACTIVE")


def test_keys_of_a_person_who_left_the_tenant_stop_working(tenant):
    alice = factories.make_member(tenant, "alice")
    _, plaintext = factories.make_api_key(tenant, scopes=["tenant:read"], user=alice)
    Membership.objects.filter(user=alice).delete()
    assert_problem(client_for(plaintext).get("/api/v1/tenant"), 401, "API_KEY_USER_INACTIVE")


def test_a_service_key_outlives_the_person_who_created_it(tenant):
    bob = factories.make_member(tenant, "bob", "admin")
    _, plaintext = services.api_key_issue(
        tenant=tenant, name="ci", scopes=["tenant:read"], created_by=bob
    )
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    assert client_for(plaintext).get("/api/v1/tenant").status_code == 200


def test_authentication_stays_one_read_for_service_keys(tenant, django_assert_num_queries):
    """The gate's callers (service keys) pay one read; a person's key a second one that also
    loads the person (``request.user``), as it always needed."""
    from controlplane.tenancy.auth import authenticate_api_key

    alice = factories.make_member(tenant, "alice")
    for user, reads in ((None, 1), (alice, 2)):
        key, plaintext = factories.make_api_key(tenant, scopes=["tenant:read"], user=user)
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        with django_assert_num_queries(reads):
            loaded = authenticate_api_key(plaintext)
            assert loaded.tenant.slug == "acme"
            assert user is None or loaded.user.username == "alice"
