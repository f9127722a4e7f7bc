"""Stable error codes of the billing app."""

from enum import StrEnum


class BillingErrorCode(StrEnum):
    FEATURE_NOT_ENTITLED = "FEATURE_NOT_ENTITLED"
