"""Stable error codes of the identity app (token and approver-group management; SCIM itself
answers SCIM errors)."""

from __future__ import annotations

from enum import StrEnum

from controlplane.core.errors import register_error_codes


class IdentityErrorCode(StrEnum):
    SCIM_TOKEN_REVOKED = "SCIM_TOKEN_REVOKED"  # noqa: S105 - an error code, not a secret
    TENANT_TERMINATED = "TENANT_TERMINATED"
    APPROVER_GROUP_EXISTS = "APPROVER_GROUP_EXISTS"


register_error_codes(
    IdentityErrorCode,
    {
        IdentityErrorCode.SCIM_TOKEN_REVOKED: "Issue a new SCIM token (dashboard → SCIM, or "
        "`manage.py create_scim_token`) instead of rotating a revoked one.",
        IdentityErrorCode.TENANT_TERMINATED: "A terminated tenant gets no new credentials; ask "
        "your Tollgate operator to reactivate it first.",
        IdentityErrorCode.APPROVER_GROUP_EXISTS: "Use the existing group, or choose another name.",
    },
)
