"""Stable error codes of the identity app (token and approver-group management; SCIM itself
answers SCIM errors)."""

from __future__ import annotations

from enum import StrEnum


class IdentityErrorCode(StrEnum):
    SCIM_TOKEN_REVOKED = "SCIM_TOKEN_REVOKED"  # noqa: S105 - an error code, not a secret
    TENANT_TERMINATED = "TENANT_TERMINATED"
    APPROVER_GROUP_EXISTS = "APPROVER_GROUP_EXISTS"
