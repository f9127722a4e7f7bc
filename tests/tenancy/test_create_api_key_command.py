"""``manage.py create_api_key``: operators issue a key (e.g. an approver's), printed once."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from controlplane.tenancy.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue()


def test_issues_a_user_bound_key_printed_alone_on_the_last_line(tenant):
    owner = factories.make_member(tenant, "olga", "owner")
    output = run(tenant.slug, "--user", "olga", "--name", "approvals", "--scopes", "approvals:read")
    plaintext = output.strip().splitlines()[-1]
    record = ApiKey.objects.get(name="approvals")
    assert record.user == owner and plaintext.startswith(f"tg_{record.prefix}_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get("/api/v1/approvals").status_code == 200  # acts as olga


def test_refuses_non_members_unknown_scopes_and_tenants(tenant):
    factories.make_user("outsider")
    with pytest.raises(CommandError, match="not a member"):
        run(tenant.slug, "--user", "outsider", "--name", "x", "--scopes", "approvals:read")
    with pytest.raises(CommandError, match="Unknown scope"):
        run(tenant.slug, "--name", "x", "--scopes", "nope:read")
    with pytest.raises(CommandError, match="No tenant"):
        run("ghost", "--name", "x", "--scopes", "approvals:read")
    assert not ApiKey.objects.filter(name="x").exists()


def test_the_key_records_who_is_accountable_for_it(tenant):
    """17's key hierarchy: a person's key is theirs; a service key may name the member
    accountable for it; without either it is the operator's (no person)."""
    olga = factories.make_member(tenant, "olga", "owner")
    run(tenant.slug, "--user", "olga", "--name", "mine", "--scopes", "approvals:read")
    run(tenant.slug, "--created-by", "olga", "--name", "svc", "--scopes", "gate:write")
    run(tenant.slug, "--name", "ops", "--scopes", "gate:write")
    keys = {k.name: k for k in ApiKey.objects.filter(tenant=tenant)}
    assert (keys["mine"].user, keys["mine"].created_by) == (olga, olga)
    assert (keys["svc"].user, keys["svc"].created_by) == (None, olga)
    assert (keys["ops"].user, keys["ops"].created_by) == (None, None)
    factories.make_member(tenant, "piet", "admin")
    with pytest.raises(CommandError, match="that person's"):
        run(tenant.slug, "--user", "olga", "--created-by", "piet", "--name", "x", "--scopes", "a")
