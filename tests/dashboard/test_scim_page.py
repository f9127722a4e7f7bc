"""The SCIM page: tokens created (shown once), rotated (now or with a 24 h grace) and revoked
through the services, for owners and admins only; people and groups read-only; the ledger."""

from __future__ import annotations

import re

import pytest

from controlplane.audit.models import LedgerEntry
from controlplane.identity.models import ScimToken
from controlplane.identity.services.groups import scim_group_create
from controlplane.identity.services.tokens import scim_token_issue, scim_token_revoke
from controlplane.identity.services.users import scim_user_create
from tests import factories
from tests.dashboard.conftest import logged_in
from tests.identity.scim_helpers import ScimClient

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r"tgscim_[a-z0-9]+_[A-Za-z0-9]+")


def works(token: str) -> bool:
    return ScimClient(token).get("/Users").status_code == 200


def shown_once(response) -> str:
    assert response.status_code == 200, response.content[:500]
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert "http://testserver/scim/v2" in page  # what to paste into the identity provider
    found = TOKEN.findall(page)
    assert len(found) == 1, found
    return found[0]


def test_create_shows_the_token_once_with_the_base_url(world, owner_client):
    plaintext = shown_once(owner_client.post("/dashboard/scim/", {"name": "Okta production"}))
    assert works(plaintext)
    token = ScimToken.objects.get(tenant=world["tenant"])
    assert token.created_by == world["owner"]
    later = owner_client.get("/dashboard/scim/")
    page = later.content.decode()
    assert plaintext not in page and "Cache-Control" not in later.headers
    assert token.masked in page and "Okta production" in page and "olivia" in page
    assert "active" in page
    assert LedgerEntry.objects.filter(kind="scim_token.issued", tenant=world["tenant"]).exists()
    blank = owner_client.post("/dashboard/scim/", {"name": ""})
    assert blank.status_code == 400 and not TOKEN.search(blank.content.decode())


def test_rotate_with_grace_keeps_the_old_token_a_day_rotate_now_stops_it(world, owner_client):
    old, old_plain = scim_token_issue(tenant=world["tenant"], name="Entra")
    url = f"/dashboard/scim/tokens/{old.pk}/"
    successor = shown_once(owner_client.post(url, {"action": "rotate_with_grace"}))
    assert successor != old_plain and works(successor) and works(old_plain)
    old.refresh_from_db()
    assert old.expires_at is not None and old.revoked_at is None
    assert "rotated, works until" in owner_client.get("/dashboard/scim/").content.decode()

    newest = ScimToken.objects.filter(tenant=world["tenant"]).order_by("-created_at").first()
    third = shown_once(
        owner_client.post(f"/dashboard/scim/tokens/{newest.pk}/", {"action": "rotate"})
    )
    assert works(third) and not works(successor)
    assert LedgerEntry.objects.filter(kind="scim_token.rotated").count() == 2


def test_revoke_stops_the_token_and_a_revoked_one_cannot_be_rotated(world, owner_client):
    token, plaintext = scim_token_issue(tenant=world["tenant"], name="OneLogin")
    url = f"/dashboard/scim/tokens/{token.pk}/"
    revoked = owner_client.post(url, {"action": "revoke"})
    assert revoked.status_code == 302 and not works(plaintext)
    page = owner_client.get("/dashboard/scim/").content.decode()
    assert "revoked" in page and f'action="{url}"' not in page  # no buttons for it any more
    refused = owner_client.post(url, {"action": "rotate"})
    assert refused.status_code == 409 and b"<code>SCIM_TOKEN_REVOKED</code>" in refused.content
    assert owner_client.post(url, {"action": "explode"}).status_code == 400


def test_only_owners_and_admins(world, owner_client, other_tenant):
    member = logged_in(world["member"])
    assert member.get("/dashboard/scim/").status_code == 403
    assert member.post("/dashboard/scim/", {"name": "x"}).status_code == 403
    assert not ScimToken.objects.exists()
    admin = factories.make_member(world["tenant"], "ada", "admin")
    assert logged_in(admin).get("/dashboard/scim/").status_code == 200
    theirs, plaintext = scim_token_issue(tenant=other_tenant, name="theirs")
    missing = owner_client.post(f"/dashboard/scim/tokens/{theirs.pk}/", {"action": "revoke"})
    assert missing.status_code == 404 and works(plaintext)


def test_people_groups_and_ledger_are_shown_read_only(world, owner_client):
    tenant = world["tenant"]
    alice = scim_user_create(
        tenant=tenant, doc={"userName": "alice@example.com", "externalId": "00u1"}
    )
    scim_group_create(
        tenant=tenant, doc={"displayName": "finops-okta", "members": [{"value": alice.id}]}
    )
    page = owner_client.get("/dashboard/scim/").content.decode()
    assert "alice@example.com" in page and "00u1" in page and "finops-okta" in page
    assert "scim.user.created" in page and "approver_group.created" in page
    assert "1 in all" in page
    scim_token_revoke(token=scim_token_issue(tenant=tenant, name="gone")[0])
    assert "scim_token.revoked" in owner_client.get("/dashboard/scim/").content.decode()
