"""Stable error codes of the tenancy app."""

from enum import StrEnum

from controlplane.core.errors import register_error_codes


class TenancyErrorCode(StrEnum):
    API_KEY_INVALID = "API_KEY_INVALID"
    API_KEY_REVOKED = "API_KEY_REVOKED"
    API_KEY_EXPIRED = "API_KEY_EXPIRED"
    SCOPE_MISSING = "SCOPE_MISSING"
    SCOPE_ESCALATION = "SCOPE_ESCALATION"
    BINDING_ESCALATION = "BINDING_ESCALATION"
    LIFETIME_ESCALATION = "LIFETIME_ESCALATION"
    KEY_BINDING_FORBIDS = "KEY_BINDING_FORBIDS"
    API_KEY_USER_INACTIVE = "API_KEY_USER_INACTIVE"
    UNKNOWN_SCOPE = "UNKNOWN_SCOPE"
    TENANT_SUSPENDED = "TENANT_SUSPENDED"
    TENANT_TERMINATED = "TENANT_TERMINATED"
    TENANT_SLUG_TAKEN = "TENANT_SLUG_TAKEN"
    PROJECT_SLUG_TAKEN = "PROJECT_SLUG_TAKEN"
    UNKNOWN_PROJECT = "UNKNOWN_PROJECT"


register_error_codes(
    TenancyErrorCode,
    {
        TenancyErrorCode.API_KEY_INVALID: "Send `Authorization: Bearer tg_<prefix>_<secret>` "
        "with the key exactly as it was issued.",
        TenancyErrorCode.API_KEY_REVOKED: "Issue a new key (POST /api/v1/api-keys).",
        TenancyErrorCode.API_KEY_EXPIRED: "Issue a new key (POST /api/v1/api-keys).",
        TenancyErrorCode.SCOPE_MISSING: "Issue a key with the scope named in `required_scope`.",
        TenancyErrorCode.SCOPE_ESCALATION: "Request only scopes the issuing key holds.",
        TenancyErrorCode.BINDING_ESCALATION: "Issue keys inside the issuing key's own "
        "project/environment binding and person (omit them to inherit).",
        TenancyErrorCode.LIFETIME_ESCALATION: "Set `expires_at` no later than the issuing key's "
        "own expiry (omit it to inherit).",
        TenancyErrorCode.KEY_BINDING_FORBIDS: "Use a key that is not bound to a project or "
        "environment for tenant-wide actions.",
        TenancyErrorCode.API_KEY_USER_INACTIVE: "The key's person is deactivated or left the "
        "tenant: issue a key for an active member or a service key.",
        TenancyErrorCode.UNKNOWN_SCOPE: "Use scopes listed in docs/errors.md#scopes.",
        TenancyErrorCode.TENANT_SUSPENDED: "Contact your Tollgate operator to reactivate the "
        "tenant.",
        TenancyErrorCode.TENANT_TERMINATED: "Its keys no longer work; contact your Tollgate "
        "operator.",
        TenancyErrorCode.TENANT_SLUG_TAKEN: "Choose another slug.",
        TenancyErrorCode.PROJECT_SLUG_TAKEN: "Choose another slug, or use the existing project.",
        TenancyErrorCode.UNKNOWN_PROJECT: "Create it with POST /api/v1/projects or fix the slug.",
    },
)
