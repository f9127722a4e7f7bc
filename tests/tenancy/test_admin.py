"""The admin issues a key once, never shows a secret afterwards, and writes via services."""

from __future__ import annotations

import pytest

from controlplane.tenancy.models import ApiKey, Tenant
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456!")
    client.force_login(user)
    return client


def test_admin_issues_a_key_and_shows_it_once(admin_client, tenant):
    response = admin_client.post(
        "/admin/tenancy/apikey/add/",
        {"tenant": tenant.pk, "name": "from admin", "scopes": ["tenant:read"], "environment": ""},
    )
    assert response.status_code == 200, response.content[:2000]
    html = response.content.decode()
    api_key = ApiKey.objects.get(name="from admin")
    start = html.index(f"tg_{api_key.prefix}_")
    plaintext = html[start : start + len("tg_") + 12 + 1 + 40]
    secret = plaintext.rsplit("_", 1)[1]
    assert "no-store" in response["Cache-Control"]

    pages = [
        admin_client.get(f"/admin/tenancy/apikey/{api_key.pk}/change/"),
        admin_client.get("/admin/tenancy/apikey/"),
        admin_client.get("/admin/"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert secret not in page.content.decode()
    # The shown key works.
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.get("/api/v1/tenant").status_code == 200


def test_admin_lists_and_revokes(admin_client, tenant):
    key, _ = factories.make_api_key(tenant, name="old")
    assert "old" in admin_client.get("/admin/tenancy/apikey/").content.decode()
    admin_client.post("/admin/tenancy/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_admin_creates_tenants_through_the_service(admin_client):
    response = admin_client.post(
        "/admin/tenancy/tenant/add/", {"slug": "initech", "name": "Initech"}
    )
    assert response.status_code == 302
    assert Tenant.objects.get(slug="initech").lifecycle == "active"
    tenant = Tenant.objects.get(slug="initech")
    admin_client.post(
        "/admin/tenancy/tenant/", {"action": "suspend", "_selected_action": [tenant.pk]}
    )
    tenant.refresh_from_db()
    assert tenant.lifecycle == "suspended"
