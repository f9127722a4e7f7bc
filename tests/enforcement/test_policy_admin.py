"""Policy admin: versions list, diff between versions, drafts and publish through the services."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from enforcement.models import Policy
from enforcement.services.policies import policy_create_draft
from tests.enforcement.helpers import policy_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_changelist_and_diff(admin_client, tenant):
    policy_create_draft(tenant=tenant, data=policy_document(unbudgeted="deny"))
    assert admin_client.get("/admin/enforcement/policy/").status_code == 200
    v2 = Policy.objects.get(tenant=tenant, version=2)
    page = admin_client.get(f"/admin/enforcement/policy/{v2.pk}/change/").content.decode()
    assert "-unbudgeted: allow" in page and "+unbudgeted: deny" in page


def test_add_creates_a_validated_draft(admin_client, tenant):
    bad = admin_client.post(
        "/admin/enforcement/policy/add/",
        {
            "tenant": tenant.pk,
            "source_text": "version: 1\nrules:\n  - id: x\n    when: nope(\n    then: deny\n",
        },
    )
    assert bad.status_code == 200 and "rules[0].when (line 4)" in bad.content.decode()
    assert Policy.objects.filter(tenant=tenant).count() == 1
    ok = admin_client.post(
        "/admin/enforcement/policy/add/",
        {"tenant": tenant.pk, "source_text": "version: 1\nunbudgeted: deny\n"},
    )
    assert ok.status_code == 302
    draft = Policy.objects.get(tenant=tenant, version=2)
    assert draft.state == "draft" and draft.created_by == "admin:root"


def test_publish_action_goes_through_the_service(admin_client, tenant):
    draft = policy_create_draft(tenant=tenant, data=policy_document(unbudgeted="deny"))
    response = admin_client.post(
        "/admin/enforcement/policy/",
        {"action": "publish", "_selected_action": [draft.pk]},
    )
    assert response.status_code == 302
    assert dict(Policy.objects.filter(tenant=tenant).values_list("version", "state")) == {
        1: "retired",
        2: "published",
    }
