"""Stable error codes of the billing app."""

from enum import StrEnum

from controlplane.core.errors import register_error_codes


class BillingErrorCode(StrEnum):
    FEATURE_NOT_ENTITLED = "FEATURE_NOT_ENTITLED"


register_error_codes(
    BillingErrorCode,
    {
        BillingErrorCode.FEATURE_NOT_ENTITLED: "Ask your Tollgate operator for a plan that "
        "includes this feature (`feature` names it).",
    },
)
