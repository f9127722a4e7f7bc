"""Glue between the credential rows and byok.crypto: the key ring from settings, sealing/opening.

The plaintext returned by ``open_secret`` must only be handed straight to an adapter call.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from django.conf import settings

from byok import crypto


@lru_cache(maxsize=4)
def _keyring_for(spec: str) -> crypto.KeyRing:
    return crypto.KeyRing.from_config(spec)


def keyring() -> crypto.KeyRing:
    """The key ring parsed from ``settings.BYOK_KEKS`` (cached per spec value)."""
    return _keyring_for(settings.BYOK_KEKS)


def _pepper() -> bytes:
    # Domain-separated from API key hashing so the two digests are never comparable.
    return hmac.new(
        settings.API_KEY_PEPPER.encode("utf-8"), b"tollgate/byok-fingerprint", hashlib.sha256
    ).digest()


def fingerprint(api_key: str) -> str:
    """HMAC-SHA256 of the key under a server pepper (duplicate detection, never reversible)."""
    return crypto.fingerprint(api_key, pepper=_pepper())


def aad_for(tenant_id: str, credential_id: str) -> bytes:
    """Binds a ciphertext to its owner row: copied onto another row it does not decrypt."""
    return f"byok:{tenant_id}:{credential_id}".encode()


def seal(api_key: str, *, tenant_id: str, credential_id: str) -> crypto.Envelope:
    """Encrypt under the active KEK."""
    return keyring().encrypt(api_key, aad=aad_for(tenant_id, credential_id))


def open_secret(credential) -> str:
    """Decrypt a credential's key; raises crypto.DecryptionError (never with key material)."""
    return keyring().decrypt(
        bytes(credential.ciphertext),
        credential.kek_version,
        aad=aad_for(credential.tenant_id, credential.pk),
    )
