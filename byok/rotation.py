"""KEK rotation: re-wrap each credential's data key under the active KEK, in small batches.

Only the 48-byte wrapped DEK changes; the secret's ciphertext is kept and no plaintext is ever
produced. Each batch is one short transaction over rows claimed with SKIP LOCKED, so the web
keeps serving (a row being re-wrapped is readable at its old version until the commit) and
several runs may proceed at once. Re-running after an interruption continues where it stopped:
only rows not yet at the active version are selected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction

from byok import vault
from byok.crypto import DecryptionError
from byok.models import ProviderCredential
from controlplane.audit.services import ledger_append_control


@dataclass
class RotationReport:
    active_version: int
    rewrapped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    remaining: int = 0


def pending_count(active_version: int) -> int:
    return ProviderCredential.objects.exclude(kek_version=active_version).count()


def rotate_kek(
    *, batch_size: int = 100, progress: Callable[[str], None] | None = None
) -> RotationReport:
    """Re-wrap every credential not under the active KEK; idempotent and resumable."""
    ring = vault.keyring()
    report = RotationReport(active_version=ring.active_version)
    total = pending_count(ring.active_version)
    failed_ids: set[str] = set()
    batch_no = 0
    while True:
        with transaction.atomic():
            rows = list(
                ProviderCredential.objects.select_for_update(skip_locked=True)
                .exclude(kek_version=ring.active_version)
                .exclude(pk__in=failed_ids)
                .order_by("id")[:batch_size]
            )
            if not rows:
                break
            batch_no += 1
            done = 0
            for row in rows:
                previous = row.kek_version
                blob = bytes(row.ciphertext)
                try:
                    if blob:
                        envelope = ring.rewrap(blob, previous)
                        row.ciphertext = envelope.blob
                    # A revoked row has no ciphertext left; only its version is moved.
                    row.kek_version = ring.active_version
                except DecryptionError as exc:
                    failed_ids.add(row.pk)
                    report.failed.append((row.pk, str(exc)))
                    continue
                row.save(update_fields=["ciphertext", "kek_version", "updated_at"])
                ledger_append_control(
                    tenant_id=row.tenant_id,
                    kind="byok.credential.rewrapped",
                    payload={
                        "credential_id": row.pk,
                        "provider": row.provider,
                        "from_kek_version": previous,
                        "to_kek_version": ring.active_version,
                    },
                )
                done += 1
            report.rewrapped += done
        if progress is not None:
            progress(
                f"batch {batch_no}: re-wrapped {done} (total {report.rewrapped}/{total}, "
                f"failed {len(report.failed)})"
            )
    report.remaining = pending_count(ring.active_version)
    return report
