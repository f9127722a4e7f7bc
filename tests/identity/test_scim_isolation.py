"""A tenant's SCIM token never sees or touches another tenant: every endpoint and filter."""

from __future__ import annotations

import pytest

from controlplane.identity.models import ApproverGroup, ScimUser
from controlplane.tenancy.models import Membership
from tests.identity.scim_helpers import (
    GROUP_SCHEMA,
    USER_SCHEMA,
    ScimClient,
    assert_scim_error,
    patch_op,
    scim_token,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant, other_tenant):
    """Tenant A (acme) with a user in a group; B's (globex) SCIM client."""
    a = ScimClient(scim_token(tenant))
    b = ScimClient(scim_token(other_tenant))
    user = a.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "alice@acme.example",
            "externalId": "A-1",
            "emails": [{"value": "alice@acme.example"}],
            "title": "CFO",
        },
    ).json()
    group = a.post(
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "finops",
            "externalId": "G-1",
            "members": [{"value": user["id"]}],
        },
    ).json()
    return a, b, user, group


READ_WRITE = [
    ("get", "/Users/{user}", None),
    ("put", "/Users/{user}", {"userName": "stolen"}),
    ("patch", "/Users/{user}", patch_op({"op": "replace", "value": {"active": False}})),
    ("delete", "/Users/{user}", None),
    ("get", "/Groups/{group}", None),
    ("put", "/Groups/{group}", {"displayName": "stolen"}),
    ("patch", "/Groups/{group}", patch_op({"op": "remove", "path": "members"})),
    ("delete", "/Groups/{group}", None),
]


@pytest.mark.parametrize(
    ("method", "template", "body"), READ_WRITE, ids=[f"{m} {t}" for m, t, _ in READ_WRITE]
)
def test_other_tenants_resources_are_404_and_untouched(world, tenant, method, template, body):
    a, b, user, group = world
    path = template.format(user=user["id"], group=group["id"])
    args = (path,) if body is None else (path, body)
    theirs = getattr(b, method)(*args)
    assert_scim_error(theirs, 404)
    made_up = template.format(
        user="scu_01aaaaaaaaaaaaaaaaaaaaaaaa", group="apg_01aaaaaaaaaaaaaaaaaaaaaaaa"
    )
    unknown = getattr(b, method)(*((made_up,) if body is None else (made_up, body)))
    assert theirs.json()["detail"].replace(user["id"], "X").replace(
        group["id"], "X"
    ) == unknown.json()["detail"].replace("scu_01aaaaaaaaaaaaaaaaaaaaaaaa", "X").replace(
        "apg_01aaaaaaaaaaaaaaaaaaaaaaaa", "X"
    )
    assert a.get(f"/Users/{user['id']}").json() == a.get(f"/Users/{user['id']}").json()
    assert a.get(f"/Users/{user['id']}").json()["userName"] == "alice@acme.example"
    assert a.get(f"/Groups/{group['id']}").json()["displayName"] == "finops"
    assert [m["value"] for m in a.get(f"/Groups/{group['id']}").json()["members"]] == [user["id"]]
    assert Membership.objects.filter(
        tenant=tenant, user=ScimUser.objects.get(pk=user["id"]).user
    ).exists()


FILTERS = [
    ("/Users", 'userName eq "alice@acme.example"'),
    ("/Users", 'externalId eq "A-1"'),
    ("/Users", 'id eq "{user}"'),
    ("/Users", 'emails.value eq "alice@acme.example"'),
    ("/Users", 'emails[value co "acme"]'),
    ("/Users", 'title eq "CFO"'),
    ("/Users", 'groups.value eq "{group}"'),
    ("/Users", 'groups.display eq "finops"'),
    ("/Users", "userName pr"),
    ("/Users", 'not (userName eq "nobody")'),
    ("/Groups", 'displayName eq "finops"'),
    ("/Groups", 'externalId eq "G-1"'),
    ("/Groups", 'members.value eq "{user}"'),
    ("/Groups", 'members[value eq "{user}"]'),
    ("/Groups", "members pr"),
    ("/Groups", 'id eq "{group}"'),
]


@pytest.mark.parametrize(("endpoint", "template"), FILTERS, ids=[f"{e} {t}" for e, t in FILTERS])
def test_lists_and_filters_never_show_another_tenant(world, endpoint, template):
    a, b, user, group = world
    expression = template.format(user=user["id"], group=group["id"])
    mine = a.client.get(f"/scim/v2{endpoint}", {"filter": expression}).json()
    assert mine["totalResults"] == 1, (expression, mine)  # the filter does find A's resource
    theirs = b.client.get(f"/scim/v2{endpoint}", {"filter": expression})
    assert theirs.status_code == 200 and theirs.json()["totalResults"] == 0, theirs.content
    searched = b.post(f"{endpoint}/.search", {"filter": expression}).json()
    assert searched["totalResults"] == 0
    root = b.post("/.search", {"filter": expression})
    assert root.status_code in (200, 400)
    assert user["id"] not in root.content.decode() and group["id"] not in root.content.decode()


def test_unfiltered_lists_show_only_the_callers_tenant(world):
    a, b, _user, _group = world
    for endpoint in ("/Users", "/Groups"):
        assert a.get(endpoint).json()["totalResults"] == 1
        assert b.get(endpoint).json()["totalResults"] == 0
    assert b.post("/.search", {}).json()["totalResults"] == 0


def test_another_tenants_user_cannot_be_made_a_member(world):
    _a, b, user, _group = world
    body = assert_scim_error(
        b.post("/Groups", {"displayName": "mine", "members": [{"value": user["id"]}]}),
        400,
        "invalidValue",
    )
    assert "not Users of this tenant" in body["detail"]
    mine = b.post("/Groups", {"displayName": "mine"}).json()
    assert_scim_error(
        b.patch(
            f"/Groups/{mine['id']}",
            patch_op({"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
        ),
        400,
        "invalidValue",
    )
    assert not ApproverGroup.objects.get(pk=mine["id"]).members.exists()


def test_the_same_user_name_in_two_tenants_is_two_identities(world, tenant, other_tenant):
    a, b, user, _group = world
    twin = b.post("/Users", {"userName": "alice@acme.example", "externalId": "A-1"})
    assert twin.status_code == 201
    mine, theirs = ScimUser.objects.get(pk=user["id"]), ScimUser.objects.get(pk=twin.json()["id"])
    assert mine.user_id != theirs.user_id
    b.patch(f"/Users/{theirs.pk}", patch_op({"op": "replace", "value": {"active": False}}))
    assert Membership.objects.filter(tenant=tenant, user=mine.user).exists()
    assert a.get(f"/Users/{user['id']}").json().get("active") is not False
