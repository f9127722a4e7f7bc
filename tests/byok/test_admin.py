"""BYOK admin: masked keys only, validate/revoke through services, entitlement enforced."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from byok import services
from byok.models import ProviderCredential
from controlplane.audit.models import LedgerEntry
from tests.byok.conftest import VALID_KEYS

pytestmark = pytest.mark.django_db
LIST = "/admin/byok/providercredential/"


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def credential(tenant, provider_server):
    return services.credential_create(
        tenant=tenant, provider="openai", api_key=VALID_KEYS["openai"], label="prod key"
    )


def test_list_and_detail_show_masked_key_only(admin_client, credential):
    key = VALID_KEYS["openai"]
    listing = admin_client.get(LIST).content.decode()
    detail = admin_client.get(f"{LIST}{credential.pk}/change/")
    assert detail.status_code == 200
    for html in (listing, detail.content.decode()):
        assert credential.masked_key in html and "prod key" in html
        assert key not in html and key[3:-4] not in html
        assert credential.fingerprint not in html
    assert "valid" in listing


def test_validate_action_probes_via_service(admin_client, credential, provider_server):
    provider_server.mode = "unauthorized"
    response = admin_client.post(
        LIST, {"action": "validate", "_selected_action": [credential.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "invalid" in response.content.decode()
    assert VALID_KEYS["openai"] not in response.content.decode()
    credential.refresh_from_db()
    assert credential.status == "invalid"
    entry = LedgerEntry.objects.filter(kind="byok.credential.validated").get()
    assert entry.payload["actor"] == "admin:root"


def test_revoke_action(admin_client, credential):
    admin_client.post(LIST, {"action": "revoke", "_selected_action": [credential.pk]})
    credential.refresh_from_db()
    assert credential.status == "revoked" and bytes(credential.ciphertext) == b""


def test_not_entitled_tenant_is_403_in_admin(admin_client, credential, provider_server):
    from billing.models import TenantPlan

    TenantPlan.objects.filter(tenant=credential.tenant).delete()
    detail = admin_client.get(f"{LIST}{credential.pk}/change/")
    assert detail.status_code == 403 and b"FEATURE_NOT_ENTITLED" in detail.content
    provider_server.reset()
    response = admin_client.post(
        LIST, {"action": "validate", "_selected_action": [credential.pk]}, follow=True
    )
    assert "FEATURE_NOT_ENTITLED" in response.content.decode()
    assert provider_server.requests == []


def test_no_add_in_admin(admin_client):
    assert admin_client.get(f"{LIST}add/").status_code == 403


def test_settings_admin_saves_through_service(admin_client, tenant):
    response = admin_client.post(
        "/admin/byok/tenantbyoksettings/add/",
        {"tenant": tenant.pk, "required_providers": '["openai"]', "daily_request_limit": "5"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert services.byok_required(tenant, "openai")
    assert LedgerEntry.objects.filter(kind="byok.settings.changed").count() == 1
    assert ProviderCredential.objects.count() == 0
