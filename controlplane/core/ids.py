"""Prefixed, time-ordered opaque ids (``dec_01J...``): 48-bit ms time + 80 random bits, Crockford."""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_BODY_LENGTH = 26
ID_RE = re.compile(r"^[a-z]{2,5}_[0-9a-hjkmnp-tv-z]{26}$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id such as ``key_01jd...``; lexical order follows creation time (ms)."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return f"{prefix}_{_encode(value, ID_BODY_LENGTH)}"


def id_factory(prefix: str):
    """A zero-argument default callable for a model's primary key (migrations serialise it)."""
    return _PREFIX_FACTORIES.setdefault(prefix, _Factory(prefix))


class _Factory:
    """Picklable/deconstructible default for ``CharField(default=...)``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def deconstruct(self):
        return ("controlplane.core.ids.id_factory", (self.prefix,), {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Factory) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)


_PREFIX_FACTORIES: dict[str, _Factory] = {}


def looks_like_id(value: str, prefix: str) -> bool:
    """True when ``value`` is syntactically an id with the given prefix."""
    return value.startswith(prefix + "_") and bool(ID_RE.match(value))


def id_lower_bound(prefix: str, when) -> str:
    """The smallest id of ``prefix`` created at or after ``when`` (an aware datetime): ids sort
    by creation time, so ``id >= id_lower_bound(...)`` selects by time through an id index."""
    value = int(when.timestamp() * 1000) << 80
    return f"{prefix}_{_encode(value, ID_BODY_LENGTH)}"
