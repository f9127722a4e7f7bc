"""The Ed25519 key that signs ledger checkpoints and export manifests."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=4)
def _private_key(seed_b64: str) -> Ed25519PrivateKey:
    seed = base64.b64decode(seed_b64)
    if len(seed) != 32:
        raise ValueError("LEDGER_SIGNING_KEY must be base64 of exactly 32 bytes.")
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key() -> Ed25519PrivateKey:
    return _private_key(settings.LEDGER_SIGNING_KEY)


def public_key_bytes() -> bytes:
    return private_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id() -> str:
    """A short stable id of the public key (first 16 hex of its sha256)."""
    return hashlib.sha256(public_key_bytes()).hexdigest()[:16]


def sign(message: bytes) -> str:
    return _b64u(private_key().sign(message))


def verify(message: bytes, signature: str, *, public_key: bytes | None = None) -> bool:
    key = Ed25519PublicKey.from_public_bytes(public_key or public_key_bytes())
    try:
        key.verify(_unb64u(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True
