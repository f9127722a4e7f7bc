"""Stable error codes of the identity app (token management; SCIM itself answers SCIM errors)."""

from enum import StrEnum


class IdentityErrorCode(StrEnum):
    SCIM_TOKEN_REVOKED = "SCIM_TOKEN_REVOKED"  # noqa: S105 - an error code, not a secret
    TENANT_TERMINATED = "TENANT_TERMINATED"
