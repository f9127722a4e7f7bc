"""``manage.py rotate_byok_kek``: re-wrap every BYOK credential under the active KEK version."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from byok import vault
from byok.models import ProviderCredential
from byok.rotation import rotate_kek


class Command(BaseCommand):
    help = (
        "Re-wrap every BYOK credential's data key under the active (highest) version in "
        "BYOK_KEKS. Online, batched, idempotent and resumable; never decrypts a key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument(
            "--check",
            action="store_true",
            help="Only report credentials per KEK version; exit 1 if any is not on the active one.",
        )

    def handle(self, *args, batch_size: int, check: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        ring = vault.keyring()
        counts = dict(
            ProviderCredential.objects.values_list("kek_version")
            .annotate(n=Count("id"))
            .order_by("kek_version")
        )
        self.stdout.write(
            f"Active KEK version {ring.active_version}; key ring holds {list(ring.versions)}. "
            f"Credentials per KEK version: {counts or '{}'}"
        )
        if check:
            behind = sum(n for version, n in counts.items() if version != ring.active_version)
            if behind:
                raise CommandError(f"{behind} credential(s) are not on the active KEK version.")
            self.stdout.write(self.style.SUCCESS("All credentials are on the active KEK version."))
            return
        report = rotate_kek(batch_size=batch_size, progress=self.stdout.write)
        for credential_id, reason in report.failed:
            self.stderr.write(f"FAILED {credential_id}: {reason}")
        self.stdout.write(
            f"Re-wrapped {report.rewrapped} credential(s) to KEK version {report.active_version}; "
            f"{report.remaining} remaining."
        )
        if report.failed or report.remaining:
            raise CommandError(
                f"{len(report.failed)} credential(s) could not be re-wrapped (is their KEK "
                "version still in BYOK_KEKS?). Fix and re-run; finished rows are not redone."
            )
        self.stdout.write(
            self.style.SUCCESS(
                "Done. Older KEK versions may now be removed from BYOK_KEKS "
                "(run with --check first)."
            )
        )
