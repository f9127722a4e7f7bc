"""Shared helpers for enforcement tests: gate behaviour is configured by publishing a policy."""

from __future__ import annotations

import contextlib
import copy
import uuid
from typing import Any

from controlplane.core.money import format_usd
from enforcement.models import Policy, Reservation
from enforcement.policy.schema import DEFAULT_DOCUMENT
from enforcement.services.gate import GateRequest, gate_decide
from enforcement.services.policies import policy_create_draft, policy_publish


def publish_policy(tenant, document: dict[str, Any] | None = None, *, text: str | None = None):
    """Create a draft from a document (or YAML text) and publish it; returns the Policy row."""
    draft = policy_create_draft(tenant=tenant, data=document, text=text)
    return policy_publish(tenant=tenant, version=draft.version)


def policy_document(base: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """``base`` (default: the built-in default document) with top-level sections merged."""
    document = copy.deepcopy(base if base is not None else DEFAULT_DOCUMENT)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return document


def set_gate_settings(
    tenant,
    *,
    modes: dict[str, dict[str, str]] | None = None,
    prod_environments: list[str] | None = None,
    fail_modes: dict[str, str] | None = None,
    on_rule_error: dict[str, str] | None = None,
    approval_threshold_micros: int | None = None,
    approvers: dict[str, Any] | None = None,
    plan_ceiling_micros: int | None = None,
    enterprise_ceiling_micros: int | None = None,
    unbudgeted: str | None = None,
    default_ttl_seconds: int | None = None,
    max_ttl_seconds: int | None = None,
    rules: list[dict[str, Any]] | None = None,
):
    """Publish a policy changing these settings on top of the tenant's published one.

    The one place tests configure the gate (``modes`` keyed by source, ``*`` = default); calls
    accumulate like edits to a settings row.
    """
    current = Policy.objects.filter(tenant=tenant, state="published").first()
    overrides: dict[str, Any] = {}
    if modes is not None:
        default = modes.get("*", {"prod": "hard", "nonprod": "hard"})
        sources = {k: v for k, v in modes.items() if k != "*"}
        overrides["modes"] = {"default": default, "sources": sources}
    if prod_environments is not None:
        overrides["environments"] = {"prod": prod_environments}
    if fail_modes is not None:
        overrides["fail_modes"] = fail_modes
    if on_rule_error is not None:
        overrides["on_rule_error"] = on_rule_error
    approval: dict[str, Any] = {}
    if approval_threshold_micros is not None:
        approval["threshold_usd"] = format_usd(approval_threshold_micros)
    if approvers is not None:
        approval["approvers"] = approvers
    if approval:
        overrides["approval"] = approval
    ceilings = {}
    if plan_ceiling_micros is not None:
        ceilings["plan_usd"] = format_usd(plan_ceiling_micros)
    if enterprise_ceiling_micros is not None:
        ceilings["enterprise_usd"] = format_usd(enterprise_ceiling_micros)
    if ceilings:
        overrides["ceilings"] = ceilings
    if unbudgeted is not None:
        overrides["unbudgeted"] = unbudgeted
    reservations = {}
    if default_ttl_seconds is not None:
        reservations["default_ttl_seconds"] = default_ttl_seconds
    if max_ttl_seconds is not None:
        reservations["max_ttl_seconds"] = max_ttl_seconds
    if reservations:
        overrides["reservations"] = reservations
    if rules is not None:
        overrides["rules"] = rules
    base = current.document if current is not None else None
    return publish_policy(tenant, policy_document(base, **overrides))


def hard_mode(tenant) -> None:
    set_gate_settings(tenant, modes={"*": {"prod": "hard", "nonprod": "hard"}})


def gate_service(tenant, *, micros: int, project="payments", environment="prod", key=None, **kw):
    """Call the gate service directly (no HTTP); returns the response body."""
    result = gate_decide(
        tenant=tenant,
        api_key=None,
        req=GateRequest(
            source=kw.pop("source", "api"),
            idempotency_key=key or uuid.uuid4().hex,
            project=project,
            environment=environment,
            estimated_micros=micros,
            **kw,
        ),
    )
    return result.response


def reservation_of(body) -> Reservation | None:
    if not body.get("reservation"):
        return None
    return Reservation.objects.get(pk=body["reservation"]["id"])


def assert_money_invariants(*, hard: bool = True) -> None:
    """Every counter equals the sum of its allocations; hard budgets are never overbooked.

    * ``BudgetPeriod.reserved`` == sum of its allocations on pending reservations.
    * ``BudgetPeriod.spent`` == sum of what committed/invoiced allocations were charged, plus
      reconciliation adjustments.
    * ``CreditGrant.remaining`` == amount - (pending holds + charged on committed ones), and
      stays within [0, amount].
    * In hard mode ``spent + reserved <= limit`` unless a late commit or an over-commit (both
      recorded in the ledger) or an invoice above the reported cost charged that period.
    """
    from collections import defaultdict

    from enforcement.models import BudgetPeriod, CreditGrant, ReservationAllocation

    reserved = defaultdict(int)
    spent = defaultdict(int)
    drawn = defaultdict(int)
    excused = set()
    allocations = ReservationAllocation.objects.select_related("reservation")
    for alloc in allocations:
        res = alloc.reservation
        if res.state == Reservation.State.PENDING:
            held = alloc.amount_micros
            charged = 0
        elif res.state in (Reservation.State.COMMITTED, Reservation.State.INVOICED):
            held = 0
            charged = alloc.charged_micros
        else:
            held = charged = 0
        if alloc.budget_period_id:
            reserved[alloc.budget_period_id] += held
            spent[alloc.budget_period_id] += charged
            adjustment = 0
            if res.state == Reservation.State.INVOICED:
                adjustment = res.invoiced_micros - res.reported_micros
                spent[alloc.budget_period_id] += adjustment
            if res.late or res.overage_micros or adjustment > 0:
                excused.add(alloc.budget_period_id)
        else:
            drawn[alloc.credit_grant_id] += held + charged
    for period in BudgetPeriod.objects.all():
        assert period.reserved_micros == reserved[period.id], (period.id, "reserved")
        assert period.spent_micros == spent[period.id], (period.id, "spent")
        assert period.reserved_micros >= 0 and period.spent_micros >= 0
        if hard and period.id not in excused:
            assert period.spent_micros + period.reserved_micros <= period.limit_micros, period.id
    for grant in CreditGrant.objects.all():
        assert 0 <= grant.remaining_micros <= grant.amount_micros, grant.id
        assert grant.remaining_micros == grant.amount_micros - drawn[grant.id], grant.id


def simulate(client, body: dict, capture_on_commit) -> dict:
    """POST /policies/simulate (202 + a queued job), run the job as the worker does, and return
    the finished job (``GET /policies/simulations/{id}``); the report is its ``result``."""
    from enforcement.tasks import policy_simulate_task

    with capture_on_commit(execute=False) as callbacks:
        response = client.post("/api/v1/policies/simulate", body, format="json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "queued" and response["Location"] == job["url"]
    assert len(callbacks) == 1  # the job is enqueued once, after the transaction commits
    assert policy_simulate_task(job["id"]) is True  # what the Celery worker runs
    finished = client.get(job["url"])
    assert finished.status_code == 200, finished.content
    return finished.json()


@contextlib.contextmanager
def row_locked_elsewhere(table: str, row_id: str):
    """Hold ``SELECT ... FOR UPDATE`` on one row from another PostgreSQL session."""
    import psycopg
    from django.db import connection

    settings_dict = connection.settings_dict
    holder = psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
    )
    try:
        holder.execute("BEGIN")
        holder.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE', [row_id])  # noqa: S608
        yield
    finally:
        holder.rollback()
        holder.close()
