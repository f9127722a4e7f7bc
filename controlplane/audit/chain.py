"""Pure hash-chain arithmetic shared by appending and verification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.core.canonical import canonical_json, sha256_hex

GENESIS_HASH = "0" * 64


def entry_hash(
    *,
    tenant_id: str,
    chain: str,
    seq: int,
    kind: str,
    payload: Any,
    prev_hash: str,
    recorded_at: datetime,
) -> str:
    """sha256 over the canonical JSON of every field that gives an entry its meaning."""
    return sha256_hex(
        canonical_json(
            {
                "tenant": tenant_id,
                "chain": chain,
                "seq": seq,
                "kind": kind,
                "payload": payload,
                "prev_hash": prev_hash,
                "recorded_at": recorded_at.isoformat(timespec="microseconds"),
            }
        )
    )


def control_chain(tenant_id: str) -> str:
    """The per-tenant chain for policy, approvals, keys, grants and credentials."""
    return f"control:{tenant_id}"


def budget_period_chain(budget_period_id: str) -> str:
    """The chain of one budget period (its row is already locked on the hot path)."""
    return f"bp:{budget_period_id}"


def scope_chain(project_id: str, environment: str) -> str:
    """The chain of decisions on a project + environment that no budget covers."""
    return f"scope:{project_id}:{environment}"
