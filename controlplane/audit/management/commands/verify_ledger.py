"""Recompute every ledger chain and checkpoint; exit 1 and name the entries when tampered."""

import json

from django.core.management.base import BaseCommand, CommandError

from controlplane.audit.services import ledger_verify_record


class Command(BaseCommand):
    help = "Verify the tamper-evident ledger (all tenants, or one with --tenant)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Tenant id (ten_…) to verify; default all.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        report = ledger_verify_record(trigger="command", tenant_id=options.get("tenant"))
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=2))
        else:
            self.stdout.write(
                f"chains={report.chains_checked} entries={report.entries_checked} "
                f"checkpoints={report.checkpoints_checked}"
            )
            for problem in report.problems:
                self.stdout.write(
                    f"  {problem.problem}: chain={problem.chain} seq={problem.seq} "
                    f"entry={problem.entry_id} — {problem.detail}"
                )
        if not report.ok:
            raise CommandError(
                f"Ledger verification FAILED with {len(report.problems)} problem(s)."
            )
        self.stdout.write(
            self.style.SUCCESS("Ledger verified: every chain and checkpoint is intact.")
        )
