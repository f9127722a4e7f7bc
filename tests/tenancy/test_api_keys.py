"""API key authentication: issue, authenticate, every failure mode, and no secret leaks."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane.tenancy import keys, services
from controlplane.tenancy.models import ApiKey
from tests import factories
from tests.api_contracts import assert_problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_logs():
    """Capture what the real JSON log handler would print."""
    root = logging.getLogger()
    console = next(h for h in root.handlers if getattr(h, "formatter", None) is not None)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_issued_key_authenticates_and_only_a_digest_is_stored(api_client, tenant):
    api_key, plaintext = factories.make_api_key(tenant)
    assert plaintext.startswith(f"tg_{api_key.prefix}_")
    secret = plaintext.rsplit("_", 1)[1]
    stored = ApiKey.objects.values().get(pk=api_key.pk)
    assert all(secret not in str(value) for value in stored.values())
    assert stored["digest"] == keys.digest(secret)

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    response = api_client.get("/api/v1/tenant")
    assert response.status_code == 200
    assert response.json()["slug"] == "acme"
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "AUTHENTICATION_REQUIRED"),
        ("Bearer nonsense", "API_KEY_INVALID"),
        ("Basic dXNlcjpwdw==", "API_KEY_INVALID"),
        ("Bearer tg_aaaaaaaaaaaa_" + "A" * 40, "API_KEY_INVALID"),
    ],
)
def test_missing_or_malformed_key_is_401(api_client, tenant, header, code):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/tenant")
    assert_problem(response, 401, code)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_secret_for_a_real_prefix_is_401(api_client, tenant):
    _, plaintext = factories.make_api_key(tenant)
    wrong = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {wrong}")
    assert_problem(api_client.get("/api/v1/tenant"), 401, "API_KEY_INVALID")


def test_revoked_key_is_401(api_client, tenant):
    api_key, plaintext = factories.make_api_key(tenant)
    services.api_key_revoke(api_key=api_key)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert_problem(api_client.get("/api/v1/tenant"), 401, "API_KEY_REVOKED")


def test_expired_key_is_401(api_client, tenant):
    api_key, plaintext = factories.make_api_key(
        tenant, expires_at=timezone.now() + timedelta(hours=1)
    )
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert_problem(api_client.get("/api/v1/tenant"), 401, "API_KEY_EXPIRED")


def test_missing_scope_is_403(api_client, tenant):
    _, plaintext = factories.make_api_key(tenant, scopes=["projects:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    body = assert_problem(api_client.get("/api/v1/tenant"), 403, "SCOPE_MISSING")
    assert body["required_scope"] == "tenant:read"
    assert api_client.get("/api/v1/projects").status_code == 200
    assert_problem(
        api_client.post("/api/v1/projects", {"slug": "x"}, format="json"), 403, "SCOPE_MISSING"
    )


@pytest.mark.parametrize(
    ("lifecycle", "code"), [("suspended", "TENANT_SUSPENDED"), ("terminated", "TENANT_TERMINATED")]
)
def test_blocked_tenant_lifecycle_is_403(api_client, tenant, lifecycle, code):
    _, plaintext = factories.make_api_key(tenant)
    services.tenant_set_lifecycle(tenant=tenant, lifecycle=lifecycle)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert_problem(api_client.get("/api/v1/tenant"), 403, code)


def test_digest_comparison_is_constant_time(monkeypatch, api_client, tenant):
    """Every path through authentication compares digests with hmac.compare_digest."""
    calls = []
    real = keys.hmac.compare_digest
    monkeypatch.setattr(keys.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    _, plaintext = factories.make_api_key(tenant)
    for presented in (plaintext, plaintext[:-1] + "Z", "tg_zzzzzzzzzzzz_" + "A" * 40, "garbage"):
        calls.clear()
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {presented}")
        api_client.get("/api/v1/tenant")
        assert calls == [1], presented


def test_secret_is_never_logged_nor_returned_after_creation(api_client, tenant, json_logs):
    _, admin_key = factories.make_api_key(tenant)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    created = api_client.post(
        "/api/v1/api-keys", {"name": "ci", "scopes": ["tenant:read"]}, format="json"
    )
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert created["Cache-Control"] == "no-store"
    secret = new_key.rsplit("_", 1)[1]

    listing = api_client.get("/api/v1/api-keys").content.decode()
    detail = api_client.get(f"/api/v1/api-keys/{created.json()['id']}").content.decode()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key}")
    api_client.get("/api/v1/tenant")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key[:-1]}X")
    api_client.get("/api/v1/tenant")

    logs = json_logs.getvalue()
    assert '"event": "request"' in logs  # the access log really ran
    for text in (listing, detail, logs):
        assert secret not in text
        assert admin_key.rsplit("_", 1)[1] not in text


def test_a_key_cannot_grant_scopes_it_lacks(api_client, tenant):
    _, plaintext = factories.make_api_key(tenant, scopes=["api_keys:write", "tenant:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    response = api_client.post(
        "/api/v1/api-keys", {"name": "x", "scopes": ["projects:write"]}, format="json"
    )
    assert_problem(response, 403, "SCOPE_ESCALATION")
    response = api_client.post(
        "/api/v1/api-keys", {"name": "x", "scopes": ["nope:read"]}, format="json"
    )
    assert_problem(response, 400, "UNKNOWN_SCOPE")


def test_revoke_is_idempotent_and_takes_effect(client_a, tenant, api_client):
    key, plaintext = factories.make_api_key(tenant, name="to-revoke")
    assert client_a.delete(f"/api/v1/api-keys/{key.id}").status_code == 204
    assert client_a.delete(f"/api/v1/api-keys/{key.id}").status_code == 204
    assert client_a.get(f"/api/v1/api-keys/{key.id}").json()["state"] == "revoked"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert_problem(api_client.get("/api/v1/tenant"), 401, "API_KEY_REVOKED")
