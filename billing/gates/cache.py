"""Per-process cache of gate provider answers: fresh for a TTL, kept as last known after it.

Per process on purpose: a hit costs a dict lookup, no network. A change made in this process
(a plan change, a subscription transition) drops the tenant's entries at commit; other
processes see it when their entry's TTL ends (documented per gate).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Entry:
    value: Any
    stored_at: float  # time.monotonic()

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.stored_at


_entries: dict[tuple[str, str], Entry] = {}
_lock = threading.Lock()


def get(kind: str, tenant_id: str) -> Entry | None:
    return _entries.get((kind, tenant_id))


def put(kind: str, tenant_id: str, value: Any) -> Entry:
    entry = Entry(value=value, stored_at=time.monotonic())
    with _lock:
        _entries[(kind, tenant_id)] = entry
    return entry


def invalidate_tenant(tenant_id: str) -> None:
    """Forget everything cached about one tenant in this process."""
    with _lock:
        for key in [k for k in _entries if k[1] == tenant_id]:
            del _entries[key]


def invalidate_tenant_now_and_at_commit(tenant_id: str) -> None:
    """For writers: drop the entries now (this transaction's own requests) and again at commit
    (a request that cached the old state in between)."""
    from django.db import transaction

    invalidate_tenant(tenant_id)
    transaction.on_commit(lambda: invalidate_tenant(tenant_id))


def clear() -> None:
    with _lock:
        _entries.clear()
