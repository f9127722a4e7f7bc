"""BYOK credential endpoints: contract, fail-closed create, entitlement, isolation, no key leaks."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from rest_framework.test import APIClient

from byok import services
from byok.models import ProviderCredential
from tests import factories
from tests.api_contracts import IsolationCase, TenantIsolationContract, assert_problem
from tests.byok.conftest import VALID_KEYS
from tests.fakes.provider_server import DEFAULT_VALID_KEY

pytestmark = pytest.mark.django_db
URL = "/api/v1/byok/credentials"


def _post(client, body):
    return client.post(URL, body, format="json")


def test_create_list_retrieve_never_return_the_key(client_a, provider_server, provider, caplog):
    caplog.set_level(logging.DEBUG)
    key = VALID_KEYS[provider]
    response = _post(client_a, {"provider": provider, "api_key": key, "label": "prod"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("byok_")
    assert body["status"] == "valid"
    assert body["masked_key"].endswith("..." + key[-4:])
    assert "api_key" not in body
    listed = client_a.get(URL)
    one = client_a.get(f"{URL}/{body['id']}")
    assert listed.status_code == 200 and one.status_code == 200
    assert [c["id"] for c in listed.json()["results"]] == [body["id"]]
    for r in (response, listed, one):
        assert key not in r.content.decode()
        assert key[4:-4] not in r.content.decode()
    assert "byok_credential_created" in caplog.text  # the capture really sees our logs
    assert key not in caplog.text
    assert all(key not in str(record.msg) for record in caplog.records)


def test_masked_form_is_sk_dots_last4(client_a, provider_server):
    body = _post(client_a, {"provider": "openai", "api_key": DEFAULT_VALID_KEY}).json()
    assert body["masked_key"] == "sk-..." + DEFAULT_VALID_KEY[-4:]


def test_plaintext_key_is_in_no_database_column(client_a, provider_server, provider):
    key = VALID_KEYS[provider]
    assert _post(client_a, {"provider": provider, "api_key": key}).status_code == 201
    # Every text/bytes column of every table, read back raw from PostgreSQL.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'jsonb', 'bytea')"
        )
        columns = cursor.fetchall()
        checked = 0
        for table, column, data_type in columns:
            expr = (
                f'"{column}"::text' if data_type != "bytea" else f"encode(\"{column}\", 'escape')"
            )
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE {expr} LIKE %s',  # noqa: S608
                [f"%{key}%"],
            )
            assert cursor.fetchone()[0] == 0, (table, column)
            checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    ("mode", "status", "code", "cause"),
    [
        ("unauthorized", 422, "BYOK_CREDENTIAL_INVALID", "invalid"),
        ("forbidden", 422, "BYOK_CREDENTIAL_INVALID", "invalid"),
        ("rate_limited", 503, "BYOK_PROVIDER_UNAVAILABLE", "rate_limited"),
        ("server_error", 503, "BYOK_PROVIDER_UNAVAILABLE", "provider_error"),
        ("unavailable", 503, "BYOK_PROVIDER_UNAVAILABLE", "provider_error"),
        ("hang", 503, "BYOK_PROVIDER_UNAVAILABLE", "timeout"),
    ],
)
def test_create_fails_closed(client_a, provider_server, provider, mode, status, code, cause):
    provider_server.mode = mode
    provider_server.retry_after = 30
    key = VALID_KEYS[provider]
    response = _post(client_a, {"provider": provider, "api_key": key})
    body = assert_problem(response, status, code)
    assert body["cause"] == cause
    assert key not in response.content.decode()
    if mode == "rate_limited":
        assert response["Retry-After"] == "30"
    assert not ProviderCredential.objects.exists()


def test_create_validation_errors(client_a, provider_server):
    assert_problem(_post(client_a, {"provider": "openai"}), 400, "VALIDATION_FAILED")
    assert_problem(
        _post(client_a, {"provider": "gpt-4o", "api_key": "sk-x"}), 400, "VALIDATION_FAILED"
    )
    assert_problem(
        _post(client_a, {"provider": "openai", "api_key": "sk-x", "typo": 1}),
        400,
        "VALIDATION_FAILED",
    )
    assert provider_server.requests == []


def test_validate_rotate_revoke(client_a, provider_server, provider):
    cred_id = _post(client_a, {"provider": provider, "api_key": VALID_KEYS[provider]}).json()["id"]
    provider_server.mode = "server_error"
    response = client_a.post(f"{URL}/{cred_id}/validate")
    assert response.status_code == 200 and response.json()["status"] == "provider_error"
    provider_server.mode = "ok"
    assert client_a.post(f"{URL}/{cred_id}/validate").json()["status"] == "valid"
    response = client_a.post(
        f"{URL}/{cred_id}/rotate", {"api_key": "sk-unknown-0000"}, format="json"
    )
    assert_problem(response, 422, "BYOK_CREDENTIAL_INVALID")
    response = client_a.post(
        f"{URL}/{cred_id}/rotate", {"api_key": VALID_KEYS[provider]}, format="json"
    )
    assert response.status_code == 200 and response.json()["rotated_at"]
    assert client_a.delete(f"{URL}/{cred_id}").status_code == 204
    assert client_a.get(f"{URL}/{cred_id}").json()["status"] == "revoked"
    assert_problem(client_a.post(f"{URL}/{cred_id}/validate"), 409, "BYOK_CREDENTIAL_REVOKED")


def test_duplicate_provider_is_409(client_a, provider_server):
    assert _post(client_a, {"provider": "openai", "api_key": DEFAULT_VALID_KEY}).status_code == 201
    response = _post(client_a, {"provider": "openai", "api_key": DEFAULT_VALID_KEY})
    assert_problem(response, 409, "BYOK_CREDENTIAL_EXISTS")


def test_scopes_are_enforced(tenant, provider_server):
    _, read_only = factories.make_api_key(tenant, scopes=["byok:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only}")
    assert client.get(URL).status_code == 200
    response = _post(client, {"provider": "openai", "api_key": DEFAULT_VALID_KEY})
    assert_problem(response, 403)
    assert provider_server.requests == []


def test_unauthenticated_is_401(api_client):
    assert_problem(api_client.get(URL), 401)


def test_not_entitled_is_403_on_every_endpoint(db, provider_server):
    tenant = factories.make_tenant("free")
    _, plaintext = factories.make_api_key(tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    calls = [
        ("get", URL, None),
        ("post", URL, {"provider": "openai", "api_key": DEFAULT_VALID_KEY}),
        ("get", f"{URL}/byok_x", None),
        ("delete", f"{URL}/byok_x", None),
        ("post", f"{URL}/byok_x/validate", None),
        ("post", f"{URL}/byok_x/rotate", {"api_key": DEFAULT_VALID_KEY}),
    ]
    for method, path, body in calls:
        response = getattr(client, method)(path, body, format="json")
        body = assert_problem(response, 403, "FEATURE_NOT_ENTITLED")
        assert body["feature"] == "byok"
    assert provider_server.requests == []


def _credential(tenant):
    from tests.byok.conftest import entitle

    entitle(tenant)
    row = ProviderCredential.objects.for_tenant(tenant).filter(provider="openai").first()
    return row or services.credential_create(
        tenant=tenant, provider="openai", api_key=DEFAULT_VALID_KEY
    )


@pytest.mark.usefixtures("provider_server")
class TestByokTenantIsolation(TenantIsolationContract):
    isolation_cases = [
        IsolationCase("retrieve", "GET", _credential, lambda c: f"{URL}/{c.pk}"),
        IsolationCase("validate", "POST", _credential, lambda c: f"{URL}/{c.pk}/validate"),
        IsolationCase(
            "rotate",
            "POST",
            _credential,
            lambda c: f"{URL}/{c.pk}/rotate",
            body={"api_key": DEFAULT_VALID_KEY},
        ),
        IsolationCase("revoke", "DELETE", _credential, lambda c: f"{URL}/{c.pk}", ok_status=204),
    ]

    def test_list_shows_only_own(self, tenant, client_a, client_b):
        credential = _credential(tenant)
        assert client_b.get(URL).json()["results"] == []
        assert [c["id"] for c in client_a.get(URL).json()["results"]] == [credential.pk]
