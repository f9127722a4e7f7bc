"""API key material: generation, parsing and the peppered digest. No database access here."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

from django.conf import settings

PREFIX_LENGTH = 12
SECRET_LENGTH = 40
_ALPHABET = string.ascii_lowercase + string.digits
KEY_RE = re.compile(rf"^tg_([a-z0-9]{{{PREFIX_LENGTH}}})_([A-Za-z0-9]{{{SECRET_LENGTH}}})$")
_SECRET_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    prefix: str
    secret: str

    @property
    def plaintext(self) -> str:
        return f"tg_{self.prefix}_{self.secret}"

    def __repr__(self) -> str:  # never print the secret, even in a traceback
        return f"KeyMaterial(prefix={self.prefix!r}, secret='…')"


def generate() -> KeyMaterial:
    """A fresh prefix (lookup handle) and a 238-bit secret."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return KeyMaterial(prefix=prefix, secret=secret)


def parse(raw: str) -> KeyMaterial | None:
    """Split ``tg_<prefix>_<secret>``; None when the shape is wrong."""
    match = KEY_RE.match(raw)
    if match is None:
        return None
    return KeyMaterial(prefix=match.group(1), secret=match.group(2))


def digest(secret: str) -> str:
    """HMAC-SHA256 of the secret under the server pepper, hex."""
    return hmac.new(
        settings.API_KEY_PEPPER.encode("utf-8"), secret.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def digests_match(stored: str, candidate: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(stored.encode("ascii"), candidate.encode("ascii"))


# Compared against when the prefix is unknown, so a miss costs the same as a wrong secret.
DUMMY_DIGEST = "0" * 64
