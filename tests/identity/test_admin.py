"""Identity admin: approver group edits go through the membership service (ledger entries);
SCIM users are read-only there (the identity provider owns them)."""

from __future__ import annotations

import pytest

from controlplane.audit.models import LedgerEntry
from controlplane.identity.models import ApproverGroup
from controlplane.identity.services.users import scim_user_create
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456!")
    client.force_login(user)
    return client


def test_group_membership_edits_in_the_admin_are_ledger_entries(admin_client, tenant):
    dana = factories.make_member(tenant, "dana")
    erin = factories.make_member(tenant, "erin")
    response = admin_client.post(
        "/admin/identity/approvergroup/add/",
        {"tenant": tenant.pk, "name": "finops", "external_id": "", "members": [dana.pk]},
    )
    assert response.status_code == 302, response.content[:2000]
    group = ApproverGroup.objects.get(name="finops")
    admin_client.post(
        f"/admin/identity/approvergroup/{group.pk}/change/",
        {"tenant": tenant.pk, "name": "finance", "external_id": "", "members": [erin.pk]},
    )
    assert list(group.members.values_list("pk", flat=True)) == [erin.pk]
    entries = list(
        LedgerEntry.objects.filter(kind__startswith="approver_group.")
        .order_by("seq")
        .values_list("kind", "payload")
    )
    assert [kind for kind, _ in entries] == ["approver_group.created", "approver_group.updated"]
    assert entries[0][1]["members_added"] == [dana.pk] and entries[0][1]["via"] == "admin"
    updated = entries[1][1]
    assert (updated["members_added"], updated["members_removed"]) == ([erin.pk], [dana.pk])
    assert updated["renamed_from"] == "finops" and updated["name"] == "finance"


def test_scim_users_are_read_only_in_the_admin(admin_client, tenant):
    scim_user = scim_user_create(tenant=tenant, doc={"userName": "alice"})
    assert admin_client.get("/admin/identity/scimuser/").status_code == 200
    change = f"/admin/identity/scimuser/{scim_user.pk}/change/"
    assert admin_client.get(change).status_code == 200  # viewable
    assert admin_client.post(change, {"user_name": "mallory"}).status_code == 403
    assert admin_client.get("/admin/identity/scimuser/add/").status_code == 403
    deleted = admin_client.post(f"/admin/identity/scimuser/{scim_user.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
