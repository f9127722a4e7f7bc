"""Approval tokens: RFC 8725 verification checklist, one-time consumption, signing-key at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from enforcement.models import ApprovalToken, Reservation, SigningKey
from enforcement.services import tokens
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.approval_helpers import approved_token

pytestmark = pytest.mark.django_db
CONSUME = "/api/v1/approval-tokens/consume"


@pytest.fixture
def issued(tenant, client_a):
    """(gate answer, token, claims) for an approved 150.00 USD request in payments/prod."""
    project = factories.make_project(tenant, "payments")
    factories.require_approval_above(tenant, "100.00")
    factories.make_budget(tenant, "1000.00", project=project)
    answer, token = approved_token(tenant, client_a)
    claims = jwt.decode(token, options={"verify_signature": False})
    return answer, token, claims


def consume(client, token, answer, **extra):
    body = {
        "token": token,
        "expected_project": "payments",
        "expected_fingerprint": answer["fingerprint"],
        **extra,
    }
    return client.post(CONSUME, body, format="json")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def active_key() -> SigningKey:
    return SigningKey.objects.get(state="active")


def sign(claims: dict, *, key: SigningKey | None = None, **header) -> str:
    """A correctly signed token with the given claims/header (what an insider bug could mint)."""
    key = key or active_key()
    headers = {"typ": "approval+jwt", "kid": key.kid, **header}
    return jwt.encode(claims, tokens.private_key_of(key), algorithm="EdDSA", headers=headers)


def raw_token(header: dict, claims: dict, signature: bytes = b"") -> str:
    encode = lambda part: b64u(json.dumps(part, separators=(",", ":")).encode())  # noqa: E731
    return f"{encode(header)}.{encode(claims)}.{b64u(signature)}"


def test_token_format(issued):
    answer, token, claims = issued
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "approval+jwt", "kid": active_key().kid}
    assert set(claims) == set(tokens.REQUIRED_CLAIMS)
    assert claims["decision_id"] == answer["decision_id"]
    assert claims["approval_id"] == answer["approval"]["id"]
    assert claims["fingerprint"] == answer["fingerprint"]
    assert claims["project"] == "payments" and claims["environment"] == "prod"
    assert claims["max_cost_usd"] == "150.00"
    assert claims["nbf"] == claims["iat"] < claims["exp"]
    assert claims["aud"] == "urn:tollgate:gate" and claims["iss"] == "urn:tollgate"


def test_consume_once_then_replay_is_409(client_a, issued):
    answer, token, claims = issued
    first = consume(client_a, token, answer, expected_environment="prod", cost_usd="150.00")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["consumed"] is True and body["jti"] == claims["jti"]
    assert body["reservation"]["id"] == answer["reservation"]["id"]
    assert body["reservation"]["state"] == "pending"
    problem = assert_problem(consume(client_a, token, answer), 409, "TOKEN_ALREADY_CONSUMED")
    assert claims["jti"] in problem["detail"]
    # The continuation through the gate is refused too.
    from tests.enforcement.approval_helpers import gate

    assert_problem(gate(client_a, approval_token=token), 409, "TOKEN_ALREADY_CONSUMED")


def _alg_none(token, claims):
    return raw_token({"alg": "none", "typ": "approval+jwt", "kid": active_key().kid}, claims)


def _hs256_with_public_key(token, claims):
    key = active_key()
    public = tokens.public_key_of(key).public_bytes(Encoding.Raw, PublicFormat.Raw)
    header = {"alg": "HS256", "typ": "approval+jwt", "kid": key.kid}
    unsigned = raw_token(header, claims).rsplit(".", 1)[0]
    mac = hmac.new(public, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64u(mac)}"


def _hs256_with_jwk_x(token, claims):
    key = active_key()
    header = {"alg": "HS256", "typ": "approval+jwt", "kid": key.kid}
    unsigned = raw_token(header, claims).rsplit(".", 1)[0]
    mac = hmac.new(key.public_key.encode(), unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64u(mac)}"


def _tampered(token, claims):
    header, _, signature = token.split(".")
    forged = b64u(json.dumps({**claims, "max_cost_usd": "99999.00"}).encode())
    return f"{header}.{forged}.{signature}"


def _with(**changes):
    return lambda token, claims: sign({**claims, **changes})


def _without(name):
    return lambda token, claims: sign({k: v for k, v in claims.items() if k != name})


NOW = int(time.time())
REJECTIONS = [
    ("alg-none", _alg_none, "alg 'none' is not accepted"),
    ("hs256-public-key-bytes", _hs256_with_public_key, "alg 'HS256' is not accepted"),
    ("hs256-jwk-x", _hs256_with_jwk_x, "alg 'HS256' is not accepted"),
    ("unknown-kid", lambda t, c: sign(c, kid="sgk_unknown"), "unknown kid 'sgk_unknown'"),
    ("no-kid", lambda t, c: raw_token({"alg": "EdDSA", "typ": "approval+jwt"}, c, b"x"), "kid"),
    ("wrong-typ", lambda t, c: sign(c, typ="JWT"), "typ 'JWT' is not 'approval+jwt'"),
    ("wrong-aud", _with(aud="urn:someone-else"), "aud is not"),
    ("wrong-iss", _with(iss="https://evil.example"), "iss is not"),
    ("expired", _with(exp=NOW - 5), "token expired at"),
    ("not-yet-valid", _with(nbf=NOW + 3600), "not valid before"),
    ("tampered-payload", _tampered, "signature verification failed"),
    ("unissued-jti", _with(jti="atk_never_issued"), "was not issued by this Tollgate"),
    ("malformed", lambda t, c: "not-a-jwt", "malformed token"),
    ("non-integer-exp", _with(exp="tomorrow"), "must be an integer"),
    *[
        (f"missing-{name}", _without(name), f"required claim '{name}' is missing")
        for name in tokens.REQUIRED_CLAIMS
    ],
]


@pytest.mark.parametrize(
    ("make", "detail"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_rejected_with_precise_detail(client_a, issued, make, detail):
    answer, token, claims = issued
    bad = make(token, claims)
    problem = assert_problem(consume(client_a, bad, answer), 401, "TOKEN_INVALID")
    assert detail in problem["detail"], problem["detail"]
    assert ApprovalToken.objects.get(jti=claims["jti"]).consumed_at is None
    # The genuine token is still good afterwards.
    assert consume(client_a, token, answer).status_code == 200


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ({"expected_project": "search"}, "bound to project 'payments', not 'search'"),
        ({"expected_environment": "staging"}, "bound to environment 'prod', not 'staging'"),
        ({"expected_fingerprint": "sha256:" + "0" * 64}, "bound to fingerprint"),
        ({"cost_usd": "150.01"}, "cost 150.01 USD is above max_cost_usd 150.00"),
    ],
    ids=["project", "environment", "fingerprint", "cost"],
)
def test_binding_mismatch_is_rejected(client_a, issued, extra, detail):
    answer, token, claims = issued
    problem = assert_problem(consume(client_a, token, answer, **extra), 401, "TOKEN_INVALID")
    assert detail in problem["detail"], problem["detail"]
    assert ApprovalToken.objects.get(jti=claims["jti"]).consumed_at is None


def test_retired_key_is_rejected(client_a, issued):
    answer, token, _ = issued
    SigningKey.objects.filter(state="active").update(state="retired")
    problem = assert_problem(consume(client_a, token, answer), 401, "TOKEN_INVALID")
    assert "is retired" in problem["detail"]


def test_token_of_another_tenant_is_rejected(issued, other_tenant, client_b):
    answer, token, _ = issued
    factories.make_project(other_tenant, "payments")
    problem = assert_problem(consume(client_b, token, answer), 401, "TOKEN_INVALID")
    assert "another tenant" in problem["detail"]


def test_consume_needs_the_gate_scope(api_client, tenant, issued):
    answer, token, _ = issued
    _, plaintext = factories.make_api_key(tenant, scopes=["approvals:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert_problem(consume(api_client, token, answer), 403, "SCOPE_MISSING")


def test_project_bound_key_cannot_consume_for_another_project(api_client, tenant, issued):
    answer, token, _ = issued
    search = factories.make_project(tenant, "search")
    _, plaintext = factories.make_api_key(tenant, scopes=["gate:write"], project=search)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert_problem(consume(api_client, token, answer), 403, "KEY_SCOPE_MISMATCH")


def test_one_time_use_is_a_database_guarantee(issued):
    _, _, claims = issued
    first = ApprovalToken.objects.filter(jti=claims["jti"], consumed_at__isnull=True).update(
        consumed_at=Reservation.objects.get().created_at
    )
    second = ApprovalToken.objects.filter(jti=claims["jti"], consumed_at__isnull=True).update(
        consumed_at=Reservation.objects.get().created_at
    )
    assert (first, second) == (1, 0)
    from django.db import IntegrityError, transaction

    record = ApprovalToken.objects.get(jti=claims["jti"])
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalToken.objects.create(
            jti=record.jti,
            tenant_id=record.tenant_id,
            request_id=record.request_id,
            signing_key_id=record.signing_key_id,
            claims={},
            issued_at=record.issued_at,
            expires_at=record.expires_at,
        )


def test_private_key_is_encrypted_at_rest(client, issued):
    key = active_key()
    private = tokens.private_key_of(key)
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    stored = base64.b64decode(key.private_key_encrypted)
    assert raw not in stored and b64u(raw) not in key.private_key_encrypted
    root = factories.make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    page = client.get(f"/admin/enforcement/signingkey/{key.kid}/change/").content.decode()
    assert key.public_key in page
    assert key.private_key_encrypted not in page and b64u(raw) not in page


def test_wrong_encryption_key_cannot_sign(issued, settings):
    from controlplane.core.errors import TollgateError

    settings.SIGNING_KEY_ENCRYPTION_KEY = base64.b64encode(b"k" * 32).decode()
    with pytest.raises(TollgateError) as raised:
        tokens.private_key_of(active_key())
    assert raised.value.code == "SIGNING_KEY_UNAVAILABLE"


def test_jwks_lists_active_and_retiring_public_keys(api_client, issued):
    _, token, _ = issued
    old = active_key()
    tokens.signing_key_rotate()
    response = api_client.get("/.well-known/jwks.json")
    assert response.status_code == 200 and "max-age" in response["Cache-Control"]
    keys = response.json()["keys"]
    assert {k["kid"] for k in keys} == set(SigningKey.objects.values_list("kid", flat=True))
    for jwk in keys:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}  # never "d"
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
        assert len(base64.urlsafe_b64decode(jwk["x"] + "==")) == 32
    old_jwk = next(k for k in keys if k["kid"] == old.kid)
    public = jwt.PyJWK(old_jwk).key
    claims = jwt.decode(token, public, algorithms=["EdDSA"], audience="urn:tollgate:gate")
    assert claims["iss"] == "urn:tollgate"


def test_jwks_publishes_the_first_key_before_any_token(api_client, tenant, client_a):
    """A verifier configured at deploy time fetches the key that will sign the first token."""
    assert not SigningKey.objects.exists()
    keys = api_client.get("/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1 and keys[0]["kid"] == active_key().kid
    assert api_client.get("/.well-known/jwks.json").json()["keys"] == keys  # stable
    project = factories.make_project(tenant, "payments")
    factories.require_approval_above(tenant, "100.00")
    factories.make_budget(tenant, "1000.00", project=project)
    _, token = approved_token(tenant, client_a)
    assert jwt.get_unverified_header(token)["kid"] == keys[0]["kid"]
    claims = jwt.decode(
        token, jwt.PyJWK(keys[0]).key, algorithms=["EdDSA"], audience="urn:tollgate:gate"
    )
    assert claims["iss"] == "urn:tollgate"


def test_rotation_drill(client_a, tenant, issued):
    from django.core.management import call_command

    from tests.enforcement.approval_helpers import approved_token as approve_another

    answer, before, claims = issued
    k1 = active_key()
    out = __import__("io").StringIO()
    call_command("rotate_signing_key", stdout=out)
    k2 = active_key()
    assert k2.kid != k1.kid and f"active: {k2.kid}" in out.getvalue()
    k1.refresh_from_db()
    assert k1.state == "retiring" and k1.verify_until == ApprovalToken.objects.get().expires_at
    # Overlap: the token signed before the rotation still verifies; new tokens use the new key.
    tokens.token_verify(token=before, tenant_id=tenant.id, now=k1.retiring_at)
    answer2, after = approve_another(tenant, client_a, estimated_cost_usd="120.00")
    assert jwt.get_unverified_header(after)["kid"] == k2.kid
    # Not retired while one of its tokens can still be used.
    assert tokens.signing_keys_retire() == []
    # Time passes past the old token's expiry (moved in the database, no sleeping).
    record = ApprovalToken.objects.get(jti=claims["jti"])
    ApprovalToken.objects.filter(pk=record.pk).update(
        issued_at=record.issued_at.replace(year=2000),
        expires_at=record.expires_at.replace(year=2000),
    )
    out = __import__("io").StringIO()
    call_command("rotate_signing_key", "--retire-only", stdout=out)
    assert f"retired: {k1.kid}" in out.getvalue()
    k1.refresh_from_db()
    assert k1.state == "retired" and k1.retired_at is not None
    kids = {k["kid"] for k in client_a.get("/.well-known/jwks.json").json()["keys"]}
    assert kids == {k2.kid}
    problem = assert_problem(consume(client_a, before, answer), 401, "TOKEN_INVALID")
    assert f"signing key '{k1.kid}' is retired" in problem["detail"]
    assert consume(client_a, after, answer2).status_code == 200


def test_retire_task(issued):
    from enforcement.tasks import signing_keys_retire_task

    tokens.signing_key_rotate()
    ApprovalToken.objects.update(
        issued_at="2000-01-01T00:00:00Z", expires_at="2000-01-02T00:00:00Z"
    )
    assert signing_keys_retire_task() == [SigningKey.objects.get(state="retired").kid]
