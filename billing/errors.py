"""Stable error codes of the billing app."""

from enum import StrEnum

from controlplane.core.errors import register_error_codes


class BillingErrorCode(StrEnum):
    FEATURE_NOT_ENTITLED = "FEATURE_NOT_ENTITLED"
    PAYMENT_REQUIRED = "PAYMENT_REQUIRED"
    TENANT_SUSPENDED = "TENANT_SUSPENDED"
    RATE_LIMITED = "RATE_LIMITED"
    LIFECYCLE_UNAVAILABLE = "LIFECYCLE_UNAVAILABLE"
    BILLING_UNAVAILABLE = "BILLING_UNAVAILABLE"
    PROTECTION_UNAVAILABLE = "PROTECTION_UNAVAILABLE"
    SUBSCRIPTION_TRANSITION_INVALID = "SUBSCRIPTION_TRANSITION_INVALID"
    WEBHOOK_SIGNATURE_INVALID = "WEBHOOK_SIGNATURE_INVALID"
    WEBHOOK_PAYLOAD_INVALID = "WEBHOOK_PAYLOAD_INVALID"
    WEBHOOK_NOT_CONFIGURED = "WEBHOOK_NOT_CONFIGURED"
    WEBHOOK_PROCESSING_FAILED = "WEBHOOK_PROCESSING_FAILED"


# The default hint of each code; raise sites that know more (which plan allows the limit, which
# transitions are possible) pass a more specific remediation.
register_error_codes(
    BillingErrorCode,
    {
        BillingErrorCode.FEATURE_NOT_ENTITLED: "Ask your Tollgate operator for a plan that "
        "includes this feature (`feature` names it).",
        BillingErrorCode.PAYMENT_REQUIRED: "Pay the open invoice or upgrade the plan named in "
        "`upgrade_to` (docs/billing.md).",
        BillingErrorCode.TENANT_SUSPENDED: "Contact your Tollgate operator: the tenant is "
        "suspended and only reads are allowed.",
        BillingErrorCode.RATE_LIMITED: "Retry after the number of seconds in `Retry-After`, or "
        "upgrade to a plan with a higher request rate.",
        BillingErrorCode.LIFECYCLE_UNAVAILABLE: "Retry after `Retry-After`; operators: see "
        "TollgateGateFailClosed in docs/operations.md.",
        BillingErrorCode.BILLING_UNAVAILABLE: "Retry after `Retry-After`; operators: see "
        "TollgateGateFailClosed in docs/operations.md.",
        BillingErrorCode.PROTECTION_UNAVAILABLE: "Retry after `Retry-After`; operators: check "
        "PROTECTION_REDIS_URL (docs/operations.md).",
        BillingErrorCode.SUBSCRIPTION_TRANSITION_INVALID: "Move the subscription only along the "
        "transitions listed in docs/billing.md.",
        BillingErrorCode.WEBHOOK_SIGNATURE_INVALID: "Send the body exactly as signed, with the "
        "provider's signature headers and the configured secret.",
        BillingErrorCode.WEBHOOK_PAYLOAD_INVALID: "Send an event in the provider's documented "
        "format (docs/billing.md#payments).",
        BillingErrorCode.WEBHOOK_NOT_CONFIGURED: "Set the provider's webhook secret "
        "(docs/billing.md#payments).",
        BillingErrorCode.WEBHOOK_PROCESSING_FAILED: "The provider retries; no action needed.",
    },
)
