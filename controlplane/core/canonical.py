"""Canonical JSON (sorted keys, no whitespace, UTF-8) and its sha256, for fingerprints and chains."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Serialise deterministically; floats are refused because their text form is not canonical."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_refuse,
    )


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not canonical-JSON serialisable")


def sha256_hex(data: str | bytes) -> str:
    """Hex sha256 of text (UTF-8) or bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def canonical_sha256(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``, as bare hex."""
    return sha256_hex(canonical_json(value))


def fingerprint(value: Any) -> str:
    """Public fingerprint form: ``sha256:<hex>``."""
    return "sha256:" + canonical_sha256(value)
