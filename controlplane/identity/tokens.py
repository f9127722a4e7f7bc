"""SCIM bearer token material: ``tgscim_<prefix>_<secret>``. No database access here.

The same generator and peppered HMAC digest as API keys (``tenancy.keys``); only the leading
tag differs, so a SCIM token is never mistaken for an API key or the other way round.
"""

from __future__ import annotations

import re

from controlplane.tenancy import keys

TAG = "tgscim_"
_TOKEN_RE = re.compile(
    rf"^{TAG}([a-z0-9]{{{keys.PREFIX_LENGTH}}})_([A-Za-z0-9]{{{keys.SECRET_LENGTH}}})$"
)


def generate() -> tuple[str, str, str]:
    """(prefix, digest, plaintext) of a fresh token; the plaintext is shown once, never stored."""
    material = keys.generate()
    return (
        material.prefix,
        keys.digest(material.secret),
        f"{TAG}{material.prefix}_{material.secret}",
    )


def parse(raw: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed token, else None."""
    match = _TOKEN_RE.match(raw)
    return (match.group(1), match.group(2)) if match else None
