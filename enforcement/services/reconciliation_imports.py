"""Import a bill, match its lines to committed reservations and invoice them.

Each matched reservation goes through ``reservation_reconcile`` (its own transaction: the bill
amount is recorded, the difference to the reported cost is posted to its budgets, ledgered).
A reservation already invoiced, or not committed yet, is reported and left alone. Every line
that did not match is stored with its reason. The same file imported twice returns the first
import (UNIQUE(tenant, sha256)): nothing is posted twice.
"""

from __future__ import annotations

import hashlib

import structlog
from django.db import IntegrityError, transaction
from django.db.models import Q

from billing import entitlements
from billing.catalog import INVOICE_RECONCILIATION
from controlplane.core.errors import TollgateError
from enforcement.errors import EnforcementErrorCode
from enforcement.models import ReconciliationImport, ReconciliationLine, Reservation
from enforcement.reconciliation.focus import parse_focus_csv
from enforcement.reconciliation.lines import BillFormatError
from enforcement.reconciliation.llm_usage import parse_openai_costs
from enforcement.reconciliation.matching import Candidate, match_lines
from enforcement.services.reservations import reservation_reconcile

log = structlog.get_logger(__name__)
Format = ReconciliationImport.Format
PARSERS = {Format.FOCUS_CSV: parse_focus_csv, Format.OPENAI_COSTS: parse_openai_costs}


def _candidates(tenant, lines) -> list[Candidate]:
    """Committed reservations, plus any reservation a line names explicitly."""
    refs = {line.reservation_ref for line in lines if line.reservation_ref}
    reservations = (
        Reservation.objects.for_tenant(tenant)
        .filter(Q(state=Reservation.State.COMMITTED) | Q(pk__in=refs) | Q(decision_id__in=refs))
        .select_related("decision", "decision__project")
    )
    found = []
    for r in reservations:
        request = r.decision.request or {}
        resource = request.get("resource") or {}
        found.append(
            Candidate(
                id=r.id,
                decision_id=r.decision_id,
                state=r.state,
                source=r.decision.source,
                project_slug=r.decision.project.slug,
                resource_id=str(resource.get("id") or ""),
                labels={str(k): str(v) for k, v in (request.get("labels") or {}).items()},
                created_at=r.created_at,
                resolved_at=r.resolved_at,
                reported_micros=r.reported_micros or 0,
            )
        )
    return found


def reconciliation_import(
    *, tenant, format: str, content: bytes, filename: str = "", actor: str = ""
) -> tuple[ReconciliationImport, bool]:
    """Import one bill file; returns (import, created). Raises 400 for a file of another format."""
    entitlements.require(tenant, INVOICE_RECONCILIATION)
    digest = hashlib.sha256(content).hexdigest()
    existing = ReconciliationImport.objects.for_tenant(tenant).filter(sha256=digest).first()
    if existing is not None:
        return existing, False
    try:
        text = content.decode("utf-8")
        lines = PARSERS[format](text)
    except (UnicodeDecodeError, BillFormatError) as exc:
        raise TollgateError(
            EnforcementErrorCode.BILL_FORMAT_INVALID,
            f"The file is not a valid {format} bill: {exc}",
            remediation="Send a FOCUS 1.x CSV (format=focus_csv) or an OpenAI costs page "
            "(format=openai_costs), UTF-8 encoded.",
            errors=getattr(exc, "errors", None),
        ) from None
    matched, unmatched = match_lines(lines, _candidates(tenant, lines))
    try:
        with transaction.atomic():
            run = ReconciliationImport.objects.create(
                tenant=tenant,
                format=format,
                filename=filename[:255],
                sha256=digest,
                actor=actor[:200],
                lines_total=len(lines),
            )
    except IntegrityError:
        # The same file is being imported at this moment: that import is the answer.
        return ReconciliationImport.objects.get(tenant=tenant, sha256=digest), False
    results = [_invoice(run, entry) for entry in matched.values()]
    for miss in unmatched:
        results.append(
            ReconciliationLine(
                import_run=run,
                line_numbers=list(miss.line_numbers),
                outcome=miss.outcome,
                reason=miss.reason,
                external_ref=miss.external_ref[:255],
                amount_micros=miss.amount_micros,
            )
        )
    ReconciliationLine.objects.bulk_create(results)
    invoiced = [r for r in results if r.outcome == "matched"]
    run.lines_matched = len({n for r in invoiced for n in r.line_numbers})
    run.lines_unmatched = run.lines_total - run.lines_matched
    run.reservations_invoiced = len(invoiced)
    run.invoiced_micros = sum(r.amount_micros for r in invoiced)
    run.adjustment_micros = sum(r.adjustment_micros or 0 for r in invoiced)
    run.unmatched_micros = sum(r.amount_micros for r in results if r.outcome != "matched")
    run.save()
    log.info(
        "reconciliation_import",
        tenant=tenant.pk,
        import_id=run.id,
        format=format,
        lines=run.lines_total,
        matched=run.lines_matched,
        reservations=run.reservations_invoiced,
    )
    return run, True


def _invoice(run: ReconciliationImport, entry) -> ReconciliationLine:
    line = ReconciliationLine(
        import_run=run,
        line_numbers=entry.line_numbers,
        reservation_id=entry.reservation_id,
        external_ref=entry.reservation_id,
        amount_micros=entry.amount_micros,
    )
    if entry.amount_micros < 0:
        line.outcome, line.reason = "invalid", "the lines of this reservation sum below zero"
        return line
    try:
        reservation = reservation_reconcile(
            reservation_id=entry.reservation_id,
            invoiced_micros=entry.amount_micros,
            external_ref=f"{run.format}:{run.id}",
        )
    except TollgateError as exc:
        line.outcome = "already_invoiced" if exc.code == "RESERVATION_RESOLVED" else "not_committed"
        line.reason = exc.message[:300]
        return line
    line.outcome = "matched"
    line.adjustment_micros = reservation.invoiced_micros - reservation.reported_micros
    return line
