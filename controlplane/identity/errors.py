"""Stable error codes of the identity app (approver groups)."""

from __future__ import annotations

from enum import StrEnum


class IdentityErrorCode(StrEnum):
    APPROVER_GROUP_EXISTS = "APPROVER_GROUP_EXISTS"
