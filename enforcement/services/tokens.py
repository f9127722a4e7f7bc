"""Approval tokens: Ed25519 signing keys (encrypted at rest), issue, strict verification, JWKS.

A token is a JWS (RFC 7515) with header ``{"alg": "EdDSA", "typ": "approval+jwt", "kid"}``.
Only the claims are stored (``ApprovalToken.claims``), never the token: Ed25519 signatures are
deterministic, so re-signing the stored claims with the same key yields the same string.
Verification follows RFC 8725: one algorithm, explicit typ, known kid, every claim required.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jwt
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Max

from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.ids import looks_like_id, new_id
from controlplane.core.money import MoneyError, format_usd, parse_usd
from enforcement.errors import EnforcementErrorCode
from enforcement.metrics import APPROVAL_TOKENS
from enforcement.models import ApprovalRequest, ApprovalToken, SigningKey

log = structlog.get_logger(__name__)

ALGORITHM = "EdDSA"
TOKEN_TYPE = "approval+jwt"  # noqa: S105 - the JWT typ header value
REQUIRED_CLAIMS = (
    "iss",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "tenant",
    "project",
    "environment",
    "fingerprint",
    "decision_id",
    "approval_id",
    "max_cost_usd",
)
KeyState = SigningKey.State


# --- keys ---------------------------------------------------------------------------------------


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _kek(encoded: str | None = None) -> AESGCM:
    raw = base64.b64decode(encoded or settings.SIGNING_KEY_ENCRYPTION_KEY)
    if len(raw) != 32:
        raise ImproperlyConfigured("SIGNING_KEY_ENCRYPTION_KEY must be base64 of exactly 32 bytes.")
    return AESGCM(raw)


def _aad(kid: str) -> bytes:
    return f"tollgate:approval-signing-key:{kid}".encode()


def _encrypt_private(raw: bytes, kid: str) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _kek().encrypt(nonce, raw, _aad(kid))).decode("ascii")


@lru_cache(maxsize=16)
def _private_key(kid: str, blob: str, kek: str) -> Ed25519PrivateKey:
    data = base64.b64decode(blob)
    try:
        raw = _kek(kek).decrypt(data[:12], data[12:], _aad(kid))
    except InvalidTag as exc:
        raise TollgateError(
            EnforcementErrorCode.SIGNING_KEY_UNAVAILABLE,
            f"Signing key {kid} cannot be decrypted with SIGNING_KEY_ENCRYPTION_KEY.",
            remediation="Restore the encryption key this deployment used, or rotate the "
            "signing key with `manage.py rotate_signing_key`.",
            status=503,
        ) from exc
    return Ed25519PrivateKey.from_private_bytes(raw)


def private_key_of(key: SigningKey) -> Ed25519PrivateKey:
    return _private_key(key.kid, key.private_key_encrypted, settings.SIGNING_KEY_ENCRYPTION_KEY)


def public_key_of(key: SigningKey) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_unb64u(key.public_key))


def _signing_key_new(*, now: datetime) -> SigningKey:
    kid = new_id("sgk")
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SigningKey.objects.create(
        kid=kid,
        public_key=_b64u(public),
        private_key_encrypted=_encrypt_private(raw, kid),
        state=KeyState.ACTIVE,
        created_at=now,
    )


def signing_key_for_issuing(*, now: datetime) -> SigningKey:
    """Lock the active key (creating the first one), so rotation cannot retire it under us."""
    key = SigningKey.objects.select_for_update().filter(state=KeyState.ACTIVE).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            _signing_key_new(now=now)
    except IntegrityError:
        pass  # a concurrent caller created it first (one active key, enforced by the database)
    return SigningKey.objects.select_for_update().get(state=KeyState.ACTIVE)


def signing_key_rotate() -> tuple[SigningKey, SigningKey | None]:
    """A new key becomes active; the previous one is retiring (still verifies its tokens)."""
    with transaction.atomic():
        now = db_now()
        old = SigningKey.objects.select_for_update().filter(state=KeyState.ACTIVE).first()
        if old is not None:
            old.state = KeyState.RETIRING
            old.retiring_at = now
            old.verify_until = old.tokens.aggregate(m=Max("expires_at"))["m"]
            old.save(update_fields=["state", "retiring_at", "verify_until"])
        new = _signing_key_new(now=now)
    log.info("signing_key_rotated", new_kid=new.kid, old_kid=old.kid if old else None)
    return new, old


def signing_keys_retire() -> list[str]:
    """Retire every retiring key whose tokens have all expired; returns the kids retired."""
    retired = []
    with transaction.atomic():
        now = db_now()
        for key in SigningKey.objects.select_for_update().filter(state=KeyState.RETIRING):
            latest = key.tokens.aggregate(m=Max("expires_at"))["m"]
            if latest is not None and latest > now:
                if key.verify_until != latest:
                    SigningKey.objects.filter(pk=key.pk).update(verify_until=latest)
                continue
            SigningKey.objects.filter(pk=key.pk).update(state=KeyState.RETIRED, retired_at=now)
            retired.append(key.kid)
    for kid in retired:
        log.info("signing_key_retired", kid=kid)
    return retired


def jwks() -> dict[str, Any]:
    """RFC 8037 OKP JWKs of every key that may verify a live token (active + retiring).

    Never empty: before the first token, the key that will sign it is created here, so a
    verifier configured at deploy time already holds it.
    """
    if not SigningKey.objects.filter(state=KeyState.ACTIVE).exists():
        with transaction.atomic():
            signing_key_for_issuing(now=db_now())
    keys = SigningKey.objects.filter(state__in=[KeyState.ACTIVE, KeyState.RETIRING]).order_by(
        "-created_at"
    )
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": key.public_key,
                "kid": key.kid,
                "alg": ALGORITHM,
                "use": "sig",
            }
            for key in keys
        ]
    }


# --- issue --------------------------------------------------------------------------------------


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def token_encode(claims: dict[str, Any], key: SigningKey) -> str:
    """Sign claims (keys sorted, so the same claims and key always give the same token)."""
    return jwt.encode(
        dict(sorted(claims.items())),
        private_key_of(key),
        algorithm=ALGORITHM,
        headers={"typ": TOKEN_TYPE, "kid": key.kid},
    )


def token_issue(*, approval: ApprovalRequest, now: datetime) -> tuple[ApprovalToken, str]:
    """Record and sign the token of a just-approved request (caller holds the approval lock)."""
    key = signing_key_for_issuing(now=now)
    decision = approval.decision
    issued = _ts(now)
    expires = issued + settings.APPROVAL_TOKEN_TTL_SECONDS
    jti = new_id("atk")
    claims = {
        "iss": settings.APPROVAL_TOKEN_ISSUER,
        "aud": settings.APPROVAL_TOKEN_AUDIENCE,
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "jti": jti,
        "tenant": approval.tenant_id,
        "project": decision.project.slug,
        "environment": decision.environment,
        "fingerprint": decision.fingerprint,
        "decision_id": decision.id,
        "approval_id": approval.id,
        "max_cost_usd": format_usd(decision.amount_micros),
    }
    record = ApprovalToken.objects.create(
        jti=jti,
        tenant_id=approval.tenant_id,
        request=approval,
        signing_key=key,
        claims=claims,
        issued_at=_from_ts(issued),
        expires_at=_from_ts(expires),
    )
    return record, token_encode(claims, key)


def token_string(record: ApprovalToken) -> str | None:
    """The token again (deterministic re-signing); None once its key is retired."""
    key = record.signing_key
    if key.state == KeyState.RETIRED:
        return None
    return token_encode(record.claims, key)


# --- verify -------------------------------------------------------------------------------------


def _invalid(detail: str) -> TollgateError:
    APPROVAL_TOKENS.labels(event="rejected").inc()
    log.warning("approval_token_rejected", detail=detail)
    return TollgateError(
        EnforcementErrorCode.TOKEN_INVALID,
        f"Approval token rejected: {detail}.",
        remediation="Present the unmodified token issued for this exact request "
        "(same project, environment and fingerprint) before it expires.",
        status=401,
    )


def _header(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or token.count(".") != 2:
        raise _invalid("malformed token, expected a compact JWS header.payload.signature")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _invalid(f"malformed header ({exc})") from exc
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise _invalid(f"alg {alg!r} is not accepted, approval tokens are signed with EdDSA only")
    if header.get("typ") != TOKEN_TYPE:
        raise _invalid(f"typ {header.get('typ')!r} is not {TOKEN_TYPE!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid("the kid header is missing")
    if not looks_like_id(kid, "sgk"):
        # Checked before the key lookup: a kid is only ever one of our ids, and anything else
        # (a NUL, a lone surrogate, 10 kB of text) must not reach the database as a value.
        raise _invalid(f"unknown kid {kid[:64]!r} (not a Tollgate signing key id)")
    return header


def _signature_and_claims(token: str, key: SigningKey) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            public_key_of(key),
            algorithms=[ALGORITHM],
            audience=settings.APPROVAL_TOKEN_AUDIENCE,
            issuer=settings.APPROVAL_TOKEN_ISSUER,
            options={
                "require": list(REQUIRED_CLAIMS),
                # Time is checked below against the database clock, like every write path.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise _invalid(
            "signature verification failed (token modified or not signed by kid)"
        ) from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid(f"required claim {exc.claim!r} is missing") from exc
    except jwt.InvalidAudienceError as exc:
        raise _invalid(f"aud is not {settings.APPROVAL_TOKEN_AUDIENCE!r}") from exc
    except jwt.InvalidIssuerError as exc:
        raise _invalid(f"iss is not {settings.APPROVAL_TOKEN_ISSUER!r}") from exc
    except jwt.PyJWTError as exc:
        raise _invalid(f"undecodable token ({exc})") from exc


def _check_times(claims: dict[str, Any], now: datetime) -> None:
    for name in ("iat", "nbf", "exp"):
        if not isinstance(claims[name], int) or isinstance(claims[name], bool):
            raise _invalid(f"claim {name!r} must be an integer NumericDate")
    current = now.timestamp()
    if current >= claims["exp"]:
        raise _invalid(f"token expired at {_from_ts(claims['exp']).isoformat()}")
    if claims["nbf"] > current:
        raise _invalid(f"token is not valid before {_from_ts(claims['nbf']).isoformat()} (nbf)")


def token_verify(
    *,
    token: str,
    tenant_id: str,
    now: datetime,
    expected_project: str | None = None,
    expected_environment: str | None = None,
    expected_fingerprint: str | None = None,
    cost_micros: int | None = None,
) -> tuple[dict[str, Any], ApprovalToken]:
    """Every RFC 8725 check plus the bindings; returns (claims, record) or raises 401."""
    header = _header(token)
    key = SigningKey.objects.filter(kid=header["kid"]).first()
    if key is None:
        raise _invalid(f"unknown kid {header['kid']!r}")
    if key.state == KeyState.RETIRED:
        raise _invalid(f"signing key {key.kid!r} is retired")
    claims = _signature_and_claims(token, key)
    _check_times(claims, now)
    if claims["tenant"] != tenant_id:
        raise _invalid("the token was issued for another tenant")
    bindings = (
        ("project", expected_project),
        ("environment", expected_environment),
        ("fingerprint", expected_fingerprint),
    )
    for name, expected in bindings:
        if expected is not None and claims[name] != expected:
            raise _invalid(f"token is bound to {name} {claims[name]!r}, not {expected!r}")
    if cost_micros is not None:
        try:
            ceiling = parse_usd(claims["max_cost_usd"])
        except (MoneyError, TypeError) as exc:
            raise _invalid("claim 'max_cost_usd' is not a USD amount") from exc
        if cost_micros > ceiling:
            raise _invalid(
                f"cost {format_usd(cost_micros)} USD is above max_cost_usd {claims['max_cost_usd']}"
            )
    record = (
        ApprovalToken.objects.filter(jti=claims["jti"], tenant_id=tenant_id)
        .select_related("request")
        .first()
    )
    if (
        record is None
        or record.signing_key_id != key.kid
        or record.request_id != claims["approval_id"]
        or record.request.decision_id != claims["decision_id"]
    ):
        raise _invalid(f"jti {claims['jti']!r} was not issued by this Tollgate")
    return claims, record


def approval_token_retrieve(*, approval: ApprovalRequest, api_key) -> str | None:
    """The token for the API key that made the gate call while it is unused; None otherwise.

    Handed out on every ask (gate replay or GET) until it is consumed or expires, so a lost
    response or a status check never strands the pipeline: the token is bound to this tenant,
    the request's fingerprint and one use, and this key may continue the request anyway. The
    first hand-over is recorded (``retrieved_at`` and an ``approval.token_retrieved`` entry).
    """
    if api_key is None or approval.requester_api_key_id != getattr(api_key, "pk", None):
        return None
    record = ApprovalToken.objects.filter(request=approval).select_related("signing_key").first()
    if record is None or record.consumed_at is not None:
        return None
    with transaction.atomic():
        now = db_now()
        if record.expires_at <= now:
            return None
        first = ApprovalToken.objects.filter(pk=record.pk, retrieved_at__isnull=True).update(
            retrieved_at=now
        )
        if first == 1:
            ledger_append_control(
                tenant_id=approval.tenant_id,
                kind="approval.token_retrieved",
                payload={"approval": approval.id, "jti": record.jti, "api_key": api_key.pk},
            )
    return token_string(record)
