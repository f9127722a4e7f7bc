"""SCIM tokens: shown once, stored as a peppered digest, rotatable, revocable; admin + command;
and the session store that lets deprovisioning end a person's sessions."""

from __future__ import annotations

import io
import logging

import pytest
from django.contrib.sessions.backends.base import SessionBase
from django.core.management import CommandError, call_command

from controlplane.audit.models import LedgerEntry
from controlplane.identity.models import ScimToken, UserSession
from controlplane.identity.services.people import user_sessions_end
from controlplane.identity.services.tokens import scim_token_issue
from controlplane.tenancy import keys
from tests import factories
from tests.identity.scim_helpers import ScimClient, assert_scim_error

pytestmark = pytest.mark.django_db


def test_token_is_stored_as_a_digest_only(tenant):
    token, plaintext = scim_token_issue(tenant=tenant, name="okta")
    prefix, secret = plaintext.removeprefix("tgscim_").split("_")
    stored = ScimToken.objects.get(pk=token.pk)
    assert stored.prefix == prefix and stored.digest == keys.digest(secret)
    assert secret not in str(ScimToken.objects.filter(pk=token.pk).values().get())
    entry = LedgerEntry.objects.get(kind="scim_token.issued")
    assert entry.payload["prefix"] == prefix and secret not in str(entry.payload)


def test_the_secret_never_reaches_logs_or_responses(tenant, caplog):
    caplog.set_level(logging.DEBUG)
    _, plaintext = scim_token_issue(tenant=tenant, name="okta")
    scim = ScimClient(plaintext)
    responses = [scim.get("/Users"), scim.post("/Users", {"userName": "x"}), scim.get("/nope")]
    secret = plaintext.split("_")[-1]
    assert all(secret not in r.content.decode() for r in responses)
    assert "scim_token_issued" in caplog.text  # the capture really sees our logs
    assert secret not in caplog.text


def test_management_command_prints_the_token_alone_on_the_last_line(tenant):
    out = io.StringIO()
    call_command("create_scim_token", tenant.slug, "--name", "Entra ID", stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith("tgscim_") and " " not in last
    assert ScimClient(last).get("/ServiceProviderConfig").status_code == 200
    assert ScimToken.objects.get(tenant=tenant).name == "Entra ID"


def test_management_command_rotates(tenant):
    old, old_plaintext = scim_token_issue(tenant=tenant, name="okta")
    out = io.StringIO()
    call_command(
        "create_scim_token",
        tenant.slug,
        "--rotate",
        old.prefix,
        "--grace-seconds",
        "600",
        stdout=out,
    )
    new_plaintext = out.getvalue().strip().splitlines()[-1]
    assert ScimClient(new_plaintext).get("/Users").status_code == 200
    assert ScimClient(old_plaintext).get("/Users").status_code == 200  # grace period
    old.refresh_from_db()
    assert old.expires_at is not None and old.revoked_at is None
    assert LedgerEntry.objects.get(kind="scim_token.rotated").payload["grace_seconds"] == 600


def test_management_command_errors(tenant):
    with pytest.raises(CommandError, match="No tenant"):
        call_command("create_scim_token", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No SCIM token"):
        call_command("create_scim_token", tenant.slug, "--rotate", "sct_nope", stdout=io.StringIO())


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456!")
    client.force_login(user)
    return client


def test_admin_issues_a_token_once(admin_client, tenant):
    response = admin_client.post(
        "/admin/identity/scimtoken/add/", {"tenant": tenant.pk, "name": "okta"}
    )
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    token = ScimToken.objects.get(name="okta")
    html = response.content.decode()
    start = html.index(f"tgscim_{token.prefix}_")
    plaintext = html[start : start + len("tgscim_") + 12 + 1 + 40]
    assert ScimClient(plaintext).get("/Users").status_code == 200
    secret = plaintext.rsplit("_", 1)[1]
    for page in ("/admin/identity/scimtoken/", f"/admin/identity/scimtoken/{token.pk}/change/"):
        shown = admin_client.get(page)
        assert shown.status_code == 200 and secret not in shown.content.decode()
    assert token.created_by.username == "root"


def test_admin_rotates_and_revokes(admin_client, tenant):
    token, plaintext = scim_token_issue(tenant=tenant, name="okta")
    rotated = admin_client.post(
        "/admin/identity/scimtoken/", {"action": "rotate", "_selected_action": [token.pk]}
    )
    assert rotated.status_code == 200 and "no-store" in rotated["Cache-Control"]
    assert_scim_error(ScimClient(plaintext).get("/Users"), 401)
    successor = ScimToken.objects.exclude(pk=token.pk).get()
    assert f"tgscim_{successor.prefix}_" in rotated.content.decode()
    admin_client.post(
        "/admin/identity/scimtoken/", {"action": "revoke", "_selected_action": [successor.pk]}
    )
    successor.refresh_from_db()
    assert successor.revoked_at is not None


def test_sessions_are_indexed_by_user_and_end_together(client, tenant):
    alice = factories.make_member(tenant, "alice")
    bob = factories.make_member(tenant, "bob")
    client.force_login(alice)
    other = type(client)()
    other.force_login(alice)
    third = type(client)()
    third.force_login(bob)
    assert UserSession.objects.filter(user_id=str(alice.pk)).count() == 2
    assert user_sessions_end(user_id=alice.pk) == 2
    assert UserSession.objects.filter(user_id=str(bob.pk)).count() == 1
    store: SessionBase = UserSession.get_session_store_class()(client.session.session_key)
    assert "_auth_user_id" not in store.load()
