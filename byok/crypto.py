"""Envelope encryption for BYOK secrets: AES-256-GCM data keys wrapped by versioned KEKs.

Each secret gets a fresh random 256-bit data-encryption key (DEK). The DEK encrypts the secret
with AES-256-GCM; the DEK itself is encrypted ("wrapped") with AES-256-GCM under the
key-encryption key (KEK) of a given version from the ``KeyRing``. Rotating KEKs therefore only
rewraps 48 bytes per secret and never touches the secret's ciphertext.

Blob format, version 1 (all integers big-endian)::

    offset  size    field
    0       2       magic b"TG"
    2       1       format version, 0x01
    3       4       KEK version (uint32)
    7       12      wrap nonce (random)
    19      48      wrapped DEK: AES-256-GCM(KEK, wrap nonce, DEK, aad=WRAP_AAD) = 32 + 16 tag
    67      12      data nonce (random)
    79      n + 16  AES-256-GCM(DEK, data nonce, UTF-8 plaintext, aad=DATA_AAD) incl. 16-byte tag

``WRAP_AAD = b"tollgate/dek\\x00" + blob[0:7]`` binds the wrapped DEK to the format and the KEK
version, so an edited version byte fails authentication. ``DATA_AAD = b"tollgate/secret\\x00" +
blob[0:3] + aad`` binds the ciphertext to the caller's ``aad`` (e.g. tenant id + credential id),
so a blob copied onto another tenant's row does not decrypt. The KEK version is also stored by
the caller next to the blob; the two must agree.

Nothing here imports Django; no exception or repr ever contains plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"TG"
FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_KEK_VERSION = 2**32 - 1

_HEADER = struct.Struct(">2sBI")
HEADER_LEN = _HEADER.size  # 7
WRAPPED_DEK_LEN = KEY_BYTES + TAG_BYTES  # 48
CIPHERTEXT_OFFSET = HEADER_LEN + NONCE_BYTES + WRAPPED_DEK_LEN  # 67: data nonce starts here
MIN_BLOB_LEN = CIPHERTEXT_OFFSET + NONCE_BYTES + TAG_BYTES  # 95: empty plaintext

_WRAP_AAD_PREFIX = b"tollgate/dek\x00"
_DATA_AAD_PREFIX = b"tollgate/secret\x00"


class DecryptionError(Exception):
    """An envelope could not be opened: tampered, wrong key, wrong aad or unknown KEK version."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """An encrypted secret: store ``blob`` and ``kek_version`` side by side."""

    kek_version: int
    blob: bytes

    def __repr__(self) -> str:
        return f"Envelope(kek_version={self.kek_version}, blob=<{len(self.blob)} bytes>)"


class KeyRing:
    """Versioned AES-256 key-encryption keys; new envelopes use ``active_version``."""

    __slots__ = ("_aead", "active_version")

    def __init__(self, keys: Mapping[int, bytes], active_version: int) -> None:
        if not keys:
            raise ValueError("key ring needs at least one key-encryption key")
        aead: dict[int, AESGCM] = {}
        for version, key in keys.items():
            _check_version(version)
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
                raise ValueError(
                    f"KEK version {version}: key must be {KEY_BYTES} bytes, got {size}"
                )
            aead[version] = AESGCM(bytes(key))
        if active_version not in aead:
            raise ValueError(f"active KEK version {active_version} is not in the key ring")
        self._aead = aead
        self.active_version = active_version

    @classmethod
    def from_config(cls, spec: str) -> KeyRing:
        """Parse ``"1:<base64 32 bytes>,2:<base64>"``; the highest version becomes active."""
        if spec is None or not spec.strip():
            raise ValueError("KEK spec is empty; expected '<version>:<base64 key>[,...]'")
        keys: dict[int, bytes] = {}
        for index, raw_entry in enumerate(spec.split(","), start=1):
            entry = raw_entry.strip()
            if not entry:
                raise ValueError(f"KEK spec entry #{index} is empty")
            version_text, sep, key_text = entry.partition(":")
            if not sep:
                raise ValueError(f"KEK spec entry #{index} must look like '<version>:<base64 key>'")
            version_text = version_text.strip()
            if not (version_text.isascii() and version_text.isdigit()) or int(version_text) < 1:
                raise ValueError(
                    f"KEK spec entry #{index} has invalid version {version_text[:12]!r}; "
                    "expected a positive integer"
                )
            version = int(version_text)
            _check_version(version)
            if version in keys:
                raise ValueError(f"KEK version {version} appears more than once in the KEK spec")
            key = _b64decode(key_text.strip(), version)
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"KEK version {version}: key must decode to {KEY_BYTES} bytes, got {len(key)}"
                )
            keys[version] = key
        return cls(keys, active_version=max(keys))

    @property
    def versions(self) -> tuple[int, ...]:
        """Sorted KEK versions held by this ring."""
        return tuple(sorted(self._aead))

    def __contains__(self, version: object) -> bool:
        return version in self._aead

    def __repr__(self) -> str:
        return f"KeyRing(versions={list(self.versions)}, active_version={self.active_version})"

    def needs_rewrap(self, kek_version: int) -> bool:
        """True when an envelope under ``kek_version`` is not under the active KEK."""
        return kek_version != self.active_version

    def encrypt(self, plaintext: str, *, aad: bytes) -> Envelope:
        """Encrypt ``plaintext`` under a fresh DEK wrapped by the active KEK, bound to ``aad``."""
        if not isinstance(plaintext, str):
            raise TypeError("plaintext must be str")
        _check_aad(aad)
        dek = AESGCM.generate_key(bit_length=256)
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, self.active_version)
        data_nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(dek).encrypt(
            data_nonce, plaintext.encode("utf-8"), _data_aad(header, aad)
        )
        wrapped = self._wrap(header, dek)
        return Envelope(self.active_version, header + wrapped + data_nonce + ciphertext)

    def decrypt(self, envelope_blob: bytes, kek_version: int, *, aad: bytes) -> str:
        """Return the plaintext or raise DecryptionError (never revealing any plaintext)."""
        _check_aad(aad)
        header, dek, body = self._open(envelope_blob, kek_version)
        nonce, ciphertext = body[:NONCE_BYTES], body[NONCE_BYTES:]
        try:
            plaintext = AESGCM(dek).decrypt(nonce, ciphertext, _data_aad(header, aad))
        except InvalidTag:
            raise DecryptionError(
                "envelope failed authentication (tampered ciphertext or wrong aad)"
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - GCM already authenticated the bytes
            raise DecryptionError("envelope plaintext is not UTF-8") from None

    def rewrap(self, blob: bytes, kek_version: int, *, to_version: int | None = None) -> Envelope:
        """Re-wrap only the DEK under ``to_version`` (default: active); the ciphertext is kept."""
        target = self.active_version if to_version is None else to_version
        if target not in self._aead:
            raise ValueError(f"target KEK version {target} is not in the key ring")
        _, dek, body = self._open(blob, kek_version)
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, target)
        return Envelope(target, header + self._wrap(header, dek) + body)

    def _wrap(self, header: bytes, dek: bytes) -> bytes:
        version = _HEADER.unpack(header)[2]
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead[version].encrypt(nonce, dek, _WRAP_AAD_PREFIX + header)

    def _open(self, blob: bytes, kek_version: int) -> tuple[bytes, bytes, bytes]:
        """Validate the header, unwrap the DEK; returns (header, dek, data nonce + ciphertext)."""
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise DecryptionError("envelope blob must be bytes")
        blob = bytes(blob)
        if len(blob) < MIN_BLOB_LEN:
            raise DecryptionError("envelope is truncated")
        header = blob[:HEADER_LEN]
        magic, fmt, header_version = _HEADER.unpack(header)
        if magic != MAGIC or fmt != FORMAT_VERSION:
            raise DecryptionError("unknown envelope format")
        if header_version != kek_version:
            raise DecryptionError(
                f"envelope was wrapped with KEK version {header_version}, not {kek_version}"
            )
        aead = self._aead.get(kek_version)
        if aead is None:
            raise DecryptionError(f"unknown key-encryption key version {kek_version}")
        wrap_nonce = blob[HEADER_LEN : HEADER_LEN + NONCE_BYTES]
        wrapped = blob[HEADER_LEN + NONCE_BYTES : CIPHERTEXT_OFFSET]
        try:
            dek = aead.decrypt(wrap_nonce, wrapped, _WRAP_AAD_PREFIX + header)
        except InvalidTag:
            raise DecryptionError(
                "data key failed authentication (tampered envelope or wrong KEK)"
            ) from None
        return header, dek, blob[CIPHERTEXT_OFFSET:]


def generate_kek_b64() -> str:
    """A fresh random 256-bit KEK, base64-encoded for a ``"<version>:<key>"`` spec entry."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def fingerprint(api_key: str, *, pepper: bytes) -> str:
    """Hex HMAC-SHA256 of the key under a server-side pepper, for duplicate detection."""
    if not isinstance(pepper, bytes | bytearray) or not pepper:
        raise ValueError("fingerprint pepper must be non-empty bytes")
    return hmac.new(bytes(pepper), api_key.encode("utf-8"), hashlib.sha256).hexdigest()


def last4(api_key: str) -> str:
    """Last four characters of the key; empty for keys under 8 characters (too revealing)."""
    return api_key[-4:] if len(api_key) >= 8 else ""


def mask(api_key: str) -> str:
    """Display form such as ``sk-...abcd``: a short dash prefix (<= 3 chars) plus ``last4``."""
    prefix = ""
    dash = api_key.find("-")
    # Only short vendor prefixes ("sk-") are shown; longer "sk-ant-"/"sk-proj-" collapse to "sk-".
    if 0 < dash <= 2 and len(api_key) >= 12:
        prefix = api_key[: dash + 1]
    return f"{prefix}...{last4(api_key)}"


def _check_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"KEK version must be an int, got {type(version).__name__}")
    if not 1 <= version <= MAX_KEK_VERSION:
        raise ValueError(f"KEK version {version} out of range 1..{MAX_KEK_VERSION}")


def _check_aad(aad: object) -> None:
    if not isinstance(aad, bytes | bytearray):
        raise TypeError("aad must be bytes")
    if not aad:
        # Empty aad would let a blob be replayed onto any row; require the owner binding.
        raise ValueError("aad must be non-empty (e.g. tenant id + credential id)")


def _data_aad(header: bytes, aad: bytes) -> bytes:
    return _DATA_AAD_PREFIX + header[:3] + bytes(aad)


def _b64decode(text: str, version: int) -> bytes:
    """Decode standard or URL-safe base64 strictly; error messages never echo key material."""
    if not text:
        raise ValueError(f"KEK version {version}: key is empty")
    normalised = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(normalised, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"KEK version {version}: key is not valid base64") from None
