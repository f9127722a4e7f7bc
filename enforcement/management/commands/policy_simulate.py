"""Replay a window of stored decisions against a policy file or version and print a table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.tenancy.models import Tenant
from enforcement.models import Policy
from enforcement.services import policies as policy_services
from enforcement.services.simulation import OUTCOMES, policy_simulate


class Command(BaseCommand):
    help = (
        "Simulate a policy (a YAML/JSON file or a stored version) against the decisions of a "
        "time window. Reads only; nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", help="policy document (YAML or JSON)")
        source.add_argument("--policy-version", type=int, help="a stored policy version")
        parser.add_argument("--since", help="ISO 8601 (default: 7 days before --until)")
        parser.add_argument("--until", help="ISO 8601 (default: now)")
        parser.add_argument("--limit", type=int, default=50, help="changed decisions to list")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        until = self._when(options["until"], "--until") if options["until"] else db_now()
        since = (
            self._when(options["since"], "--since")
            if options["since"]
            else until - timedelta(days=7)
        )
        try:
            if options["file"]:
                path = Path(options["file"])
                if not path.is_file():
                    raise CommandError(f"No such file: {path}")
                document, _, _ = policy_services.validate_policy_input(
                    text=path.read_text(encoding="utf-8"),
                    content_type="application/json" if path.suffix == ".json" else "",
                )
                policy = policy_services.compiled_from_document(document)
                label = str(path)
            else:
                row = Policy.objects.filter(
                    tenant=tenant, version=options["policy_version"]
                ).first()
                if row is None:
                    raise CommandError(f"No policy version {options['version']}.")
                policy = policy_services.compiled_for_row(row)
                label = f"version {row.version}"
            report = policy_simulate(tenant=tenant, policy=policy, since=since, until=until)
        except TollgateError as exc:
            details = "\n".join(
                f"  {e.get('field') or '(document)'}"
                + (f" (line {e['line']})" if e.get("line") else "")
                + f": {e['message']}"
                for e in (exc.errors or [])
            )
            raise CommandError(f"{exc.message}\n{details}".rstrip()) from exc
        self._print(report, label, options["limit"])

    def _when(self, value: str, flag: str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise CommandError(f"{flag} must be ISO 8601, e.g. 2026-11-01T00:00:00Z")
        return parsed

    def _print(self, report: dict, label: str, limit: int) -> None:
        out = self.stdout.write
        out(f"Policy {label} (sha256 {report['policy']['sha256'][:12]})")
        out(f"Window {report['window']['since']} .. {report['window']['until']}")
        out(f"Decisions replayed: {report['evaluated']} (skipped: {report['skipped']})")
        out("")
        out(f"{'outcome':<20}{'before':>8}{'after':>8}{'delta':>8}")
        for name in OUTCOMES:
            b, a = report["before"][name], report["after"][name]
            out(f"{name:<20}{b:>8}{a:>8}{a - b:>+8}")
        out("")
        out(f"Changed: {report['changed_count']}")
        if report["changed"]:
            out(f"{'decision':<32} {'amount':>12}  {'before':<20}{'after':<20}{'rule':<24}")
            for row in report["changed"][:limit]:
                out(
                    f"{row['decision_id']:<32} {row['amount_usd']:>12}  "
                    f"{row['before']['outcome']:<20}{row['after']['outcome']:<20}"
                    f"{row['changed_by_rule'] or '-':<24}"
                )
            if report["changed_count"] > limit:
                out(f"... {report['changed_count'] - limit} more (use --limit)")
