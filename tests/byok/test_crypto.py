"""Envelope encryption, key ring parsing, fingerprints and masking."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from byok.crypto import (
    CIPHERTEXT_OFFSET,
    HEADER_LEN,
    MIN_BLOB_LEN,
    DecryptionError,
    Envelope,
    KeyRing,
    fingerprint,
    generate_kek_b64,
    last4,
    mask,
)

AAD = b"tenant:7f1c|credential:42"
SECRET = "sk-ant-api03-SUPERSECRET-0123456789abcd"
K1, K2, K3 = (
    bytes(range(32)),
    bytes(range(32, 64)),
    bytes(range(64, 96)),
)  # fixed: xdist needs stable test ids


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing({1: K1, 2: K2}, active_version=2)


# --- round trip -------------------------------------------------------------------------------


def test_round_trip_uses_active_version(ring: KeyRing) -> None:
    env = ring.encrypt(SECRET, aad=AAD)
    assert env.kek_version == 2
    assert ring.decrypt(env.blob, env.kek_version, aad=AAD) == SECRET


def test_blob_layout_and_no_plaintext(ring: KeyRing) -> None:
    env = ring.encrypt(SECRET, aad=AAD)
    assert env.blob[:2] == b"TG"
    assert env.blob[2] == 1
    assert int.from_bytes(env.blob[3:HEADER_LEN], "big") == 2
    assert len(env.blob) == MIN_BLOB_LEN + len(SECRET.encode())
    assert SECRET.encode() not in env.blob
    assert SECRET not in repr(env)


def test_each_encryption_is_fresh(ring: KeyRing) -> None:
    a, b = ring.encrypt(SECRET, aad=AAD), ring.encrypt(SECRET, aad=AAD)
    assert a.blob != b.blob
    assert a.blob[CIPHERTEXT_OFFSET:] != b.blob[CIPHERTEXT_OFFSET:]


@settings(max_examples=60, deadline=None)
@given(plaintext=st.text(max_size=300), aad=st.binary(min_size=1, max_size=64))
def test_round_trip_property(plaintext: str, aad: bytes) -> None:
    ring = KeyRing({1: K1, 3: K3}, active_version=3)
    env = ring.encrypt(plaintext, aad=aad)
    assert ring.decrypt(env.blob, env.kek_version, aad=aad) == plaintext
    moved = ring.rewrap(env.blob, env.kek_version, to_version=1)
    assert ring.decrypt(moved.blob, moved.kek_version, aad=aad) == plaintext


# --- failures ---------------------------------------------------------------------------------


def test_wrong_aad_fails(ring: KeyRing) -> None:
    env = ring.encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError) as exc_info:
        ring.decrypt(env.blob, env.kek_version, aad=b"tenant:other|credential:42")
    assert SECRET not in str(exc_info.value)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_single_bit_flip_is_detected(data: st.DataObject) -> None:
    ring = KeyRing({1: K1}, active_version=1)
    env = ring.encrypt(SECRET, aad=AAD)
    index = data.draw(st.integers(min_value=0, max_value=len(env.blob) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    tampered = bytearray(env.blob)
    tampered[index] ^= 1 << bit
    with pytest.raises(DecryptionError) as exc_info:
        ring.decrypt(bytes(tampered), env.kek_version, aad=AAD)
    assert SECRET not in str(exc_info.value)


def test_truncated_and_garbage_blobs_fail(ring: KeyRing) -> None:
    env = ring.encrypt(SECRET, aad=AAD)
    for blob in (b"", b"TG", env.blob[: MIN_BLOB_LEN - 1], os.urandom(200)):
        with pytest.raises(DecryptionError):
            ring.decrypt(blob, env.kek_version, aad=AAD)


def test_wrong_kek_fails() -> None:
    env = KeyRing({1: K1}, active_version=1).encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError, match="data key failed authentication"):
        KeyRing({1: K2}, active_version=1).decrypt(env.blob, 1, aad=AAD)


def test_unknown_version_fails(ring: KeyRing) -> None:
    env = KeyRing({7: K1}, active_version=7).encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError, match="unknown key-encryption key version 7"):
        ring.decrypt(env.blob, 7, aad=AAD)


def test_version_mismatch_with_stored_column_fails(ring: KeyRing) -> None:
    env = ring.encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError, match="KEK version 2, not 1"):
        ring.decrypt(env.blob, 1, aad=AAD)


def test_editing_the_version_field_fails() -> None:
    ring = KeyRing({1: K1, 2: K1}, active_version=2)  # same key under two versions
    env = ring.encrypt(SECRET, aad=AAD)
    forged = env.blob[:3] + (1).to_bytes(4, "big") + env.blob[HEADER_LEN:]
    with pytest.raises(DecryptionError):
        ring.decrypt(forged, 1, aad=AAD)


def test_aad_is_required_bytes(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ring.encrypt(SECRET, aad=b"")
    with pytest.raises(TypeError):
        ring.encrypt(SECRET, aad="tenant")  # type: ignore[arg-type]


# --- rewrap -----------------------------------------------------------------------------------


def test_rewrap_moves_to_active_and_keeps_ciphertext() -> None:
    old = KeyRing({1: K1}, active_version=1)
    env = old.encrypt(SECRET, aad=AAD)
    new = KeyRing({1: K1, 2: K2}, active_version=2)
    assert new.needs_rewrap(env.kek_version)
    moved = new.rewrap(env.blob, env.kek_version)
    assert moved.kek_version == 2
    assert not new.needs_rewrap(moved.kek_version)
    assert moved.blob[CIPHERTEXT_OFFSET:] == env.blob[CIPHERTEXT_OFFSET:]
    assert moved.blob[HEADER_LEN:CIPHERTEXT_OFFSET] != env.blob[HEADER_LEN:CIPHERTEXT_OFFSET]
    assert new.decrypt(moved.blob, 2, aad=AAD) == SECRET
    # Once v1 is retired, only the rewrapped envelope still opens.
    retired = KeyRing({2: K2}, active_version=2)
    assert retired.decrypt(moved.blob, 2, aad=AAD) == SECRET
    with pytest.raises(DecryptionError):
        retired.decrypt(env.blob, 1, aad=AAD)


def test_rewrap_needs_no_aad_and_validates_source(ring: KeyRing) -> None:
    env = ring.encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError):
        ring.rewrap(env.blob, 1)
    with pytest.raises(ValueError, match="target KEK version 9"):
        ring.rewrap(env.blob, 2, to_version=9)


# --- key ring construction --------------------------------------------------------------------


def test_from_config_parses_and_picks_highest() -> None:
    ring = KeyRing.from_config(f" 2:{b64(K2)} , 1:{b64(K1)},10:{b64(K3)}")
    assert ring.versions == (1, 2, 10)
    assert ring.active_version == 10
    assert 2 in ring
    env = KeyRing({2: K2}, active_version=2).encrypt(SECRET, aad=AAD)
    assert ring.decrypt(env.blob, 2, aad=AAD) == SECRET


def test_from_config_accepts_urlsafe_base64() -> None:
    key = bytes(range(250, 256)) * 5 + b"\xfb\xff"
    assert "+" in b64(key) or "/" in b64(key)
    urlsafe = base64.urlsafe_b64encode(key).decode()
    assert KeyRing.from_config(f"1:{urlsafe}").versions == (1,)


def test_generated_kek_parses() -> None:
    assert KeyRing.from_config(f"1:{generate_kek_b64()}").active_version == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "KEK spec is empty"),
        ("   ", "KEK spec is empty"),
        (f"1:{b64(K1)},", "entry #2 is empty"),
        (b64(K1), "entry #1 must look like"),
        (f"x:{b64(K1)}", "invalid version 'x'"),
        (f"0:{b64(K1)}", "invalid version '0'"),
        (f"-1:{b64(K1)}", "invalid version '-1'"),
        ("1:", "KEK version 1: key is empty"),
        ("1:not*base64!", "KEK version 1: key is not valid base64"),
        ("1:QUJDR", "KEK version 1: key is not valid base64"),
        (f"1:{b64(bytes(16))}", "KEK version 1: key must decode to 32 bytes, got 16"),
        (f"1:{b64(K1)},1:{b64(K2)}", "KEK version 1 appears more than once"),
        (f"99999999999:{b64(K1)}", "out of range"),
    ],
)
def test_from_config_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as exc_info:
        KeyRing.from_config(spec)
    assert b64(K1) not in str(exc_info.value)


def test_keyring_constructor_validation() -> None:
    with pytest.raises(ValueError, match="at least one"):
        KeyRing({}, active_version=1)
    with pytest.raises(ValueError, match="32 bytes, got 16"):
        KeyRing({1: os.urandom(16)}, active_version=1)
    with pytest.raises(ValueError, match="active KEK version 3"):
        KeyRing({1: K1}, active_version=3)


def test_keyring_repr_hides_keys(ring: KeyRing) -> None:
    text = repr(ring)
    assert "versions=[1, 2]" in text
    for key in (K1, K2):
        assert b64(key) not in text
        assert key.hex() not in text
        assert repr(key) not in text


def test_envelope_is_frozen() -> None:
    env = Envelope(1, b"x")
    with pytest.raises(AttributeError):
        env.kek_version = 2  # type: ignore[misc]


# --- fingerprint / mask / last4 ---------------------------------------------------------------


def test_fingerprint_is_stable_peppered_hmac() -> None:
    fp = fingerprint(SECRET, pepper=b"pepper-1")
    assert fp == fingerprint(SECRET, pepper=b"pepper-1")
    assert len(fp) == 64
    int(fp, 16)
    assert fp != fingerprint(SECRET, pepper=b"pepper-2")
    assert fp != fingerprint(SECRET + "x", pepper=b"pepper-1")
    assert SECRET not in fp
    with pytest.raises(ValueError):
        fingerprint(SECRET, pepper=b"")


@pytest.mark.parametrize(
    ("key", "masked", "tail"),
    [
        ("sk-proj-abcdefghijklmnop1234", "sk-...1234", "1234"),
        ("sk-ant-api03-abcdefghijklmnopWXYZ", "sk-...WXYZ", "WXYZ"),
        ("sk-abcdefghijkl9876", "sk-...9876", "9876"),
        ("AIzaSyabcdefghijklmn5678", "...5678", "5678"),
        ("longprefix-abcdefgh0000", "...0000", "0000"),
        ("sk-abc1234", "...1234", "1234"),
        ("short", "...", ""),
        ("", "...", ""),
    ],
)
def test_mask_and_last4(key: str, masked: str, tail: str) -> None:
    assert mask(key) == masked
    assert last4(key) == tail


@given(st.text(min_size=0, max_size=80))
def test_mask_never_reveals_more_than_prefix_and_last4(key: str) -> None:
    shown = mask(key)
    prefix, _, suffix = shown.partition("...")
    assert len(prefix) <= 3
    assert len(suffix) <= 4
    assert key.startswith(prefix)
    assert key.endswith(suffix)
