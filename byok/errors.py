"""Stable error codes of the BYOK app."""

from enum import StrEnum

from controlplane.core.errors import register_error_codes


class ByokErrorCode(StrEnum):
    BYOK_CREDENTIAL_INVALID = "BYOK_CREDENTIAL_INVALID"
    BYOK_PROVIDER_UNAVAILABLE = "BYOK_PROVIDER_UNAVAILABLE"
    BYOK_CREDENTIAL_UNAVAILABLE = "BYOK_CREDENTIAL_UNAVAILABLE"
    BYOK_CREDENTIAL_UNVERIFIABLE = "BYOK_CREDENTIAL_UNVERIFIABLE"
    BYOK_CREDENTIAL_EXISTS = "BYOK_CREDENTIAL_EXISTS"
    BYOK_CREDENTIAL_REVOKED = "BYOK_CREDENTIAL_REVOKED"
    BYOK_UNKNOWN_PROVIDER = "BYOK_UNKNOWN_PROVIDER"
    BYOK_QUOTA_EXCEEDED = "BYOK_QUOTA_EXCEEDED"
    BYOK_QUOTA_UNAVAILABLE = "BYOK_QUOTA_UNAVAILABLE"
    BYOK_BASE_URL_FORBIDDEN = "BYOK_BASE_URL_FORBIDDEN"


register_error_codes(
    ByokErrorCode,
    {
        ByokErrorCode.BYOK_BASE_URL_FORBIDDEN: "Use a public https base URL, or ask an operator "
        "to add the host to LLM_EGRESS_ALLOWED_HOSTS.",
        ByokErrorCode.BYOK_CREDENTIAL_INVALID: "Check the key with the provider and send a "
        "working one; nothing was stored.",
        ByokErrorCode.BYOK_PROVIDER_UNAVAILABLE: "Retry after `Retry-After`; the provider could "
        "not confirm the key (`cause` says why).",
        ByokErrorCode.BYOK_CREDENTIAL_UNAVAILABLE: "Fix or rotate the tenant's credential "
        "(`credential_status` says why); there is no fallback to platform keys.",
        ByokErrorCode.BYOK_CREDENTIAL_UNVERIFIABLE: "Resend with `acknowledge_unverifiable: "
        "true` to store the key flagged.",
        ByokErrorCode.BYOK_CREDENTIAL_EXISTS: "Rotate or revoke the current credential "
        "(`credential_id`).",
        ByokErrorCode.BYOK_CREDENTIAL_REVOKED: "Create a new credential for this provider.",
        ByokErrorCode.BYOK_UNKNOWN_PROVIDER: "Use one of the providers listed in docs/byok.md.",
        ByokErrorCode.BYOK_QUOTA_EXCEEDED: "Wait for the reset at 00:00 UTC (`Retry-After`) or "
        "ask for a higher daily limit.",
        ByokErrorCode.BYOK_QUOTA_UNAVAILABLE: "Retry after `Retry-After`; operators: check "
        "Redis (BYOK_REDIS_URL / REDIS_URL) and GET /readyz.",
    },
)
