"""Stable error codes of the audit app (ledger reads and exports)."""

from enum import StrEnum

from controlplane.core.errors import register_error_codes


class AuditErrorCode(StrEnum):
    EXPORT_TOO_LARGE = "EXPORT_TOO_LARGE"


register_error_codes(
    AuditErrorCode,
    {
        AuditErrorCode.EXPORT_TOO_LARGE: "Narrow the window with since/until and export in "
        "parts (operators: LEDGER_EXPORT_MAX_ENTRIES).",
    },
)
