"""The load seam: everything a decision reads, inside its transaction, with the periods locked.

Two stores implement it with one algorithm and one lock order (``services.locking``):
PostgreSQL in one function call (``sql/gate_prepare.sql``), and the ORM (SQLite for the demo,
or PostgreSQL with ``GATE_SQL_FUNCTIONS`` off). Both return the same ``Loaded``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime

from controlplane.audit.chain import GENESIS_HASH, budget_period_chain, scope_chain
from controlplane.audit.services import ledger_heads_lock
from controlplane.core.clock import db_now
from controlplane.tenancy.models import Project, Tenant
from controlplane.tenancy.selectors import project_get, unknown_project
from enforcement.models import Budget, BudgetPeriod, Decision, SpendRollup
from enforcement.periods import period_bounds
from enforcement.policy.compiled import CompiledPolicy
from enforcement.selectors.budgets import budgets_covering, budgets_sort
from enforcement.services.budgets import budget_periods_open
from enforcement.services.gate.request import CannotDecide, GateRequest
from enforcement.services.locking import lock_current_periods
from enforcement.services.policies import active_policy, published_policy


@dataclass
class Loaded:
    """Everything a decision reads, taken inside its transaction with the periods locked."""

    now: datetime
    project: Project
    policy: CompiledPolicy
    deadline_ms: int  # the policy's, or the caller's when tighter
    budgets: list[Budget]  # covering budgets, widest scope first
    periods: list[BudgetPeriod]  # their current periods, in the same order, locked
    rollups: dict[date, int]  # this month's spend per day for the project + environment
    heads: dict[str, tuple[int, str]]  # the locked heads of the chains the decision appends to


def decision_chains(periods, project_id: str, environment: str) -> list[str]:
    """The chains a decision appends to: one per covering period, else its scope's chain."""
    return [budget_period_chain(p.id) for p in periods] or [scope_chain(project_id, environment)]


def use_sql_functions() -> bool:
    """PostgreSQL runs the read-and-lock and the write as two function calls (``sql/``)."""
    return connection.vendor == "postgresql" and settings.GATE_SQL_FUNCTIONS


def find_decision(tenant: Tenant, source: str, key: str) -> Decision | None:
    return Decision.objects.filter(tenant=tenant, source=source, idempotency_key=key).first()


def load(
    tenant: Tenant, req: GateRequest, project_slug: str, environment: str, policy, deadline
) -> Loaded | Decision:
    """The decision's reads (or the decision this idempotency key already made)."""
    if use_sql_functions():
        return _load_sql(tenant, req, project_slug, environment, policy, deadline)
    return _load_orm(tenant, req, project_slug, environment, deadline)


def _begin_decision(deadline_ms: int):
    """Bound lock waits and statements by the deadline; return the transaction time.

    On PostgreSQL this is one round trip (two SET LOCALs and ``now()`` in one call).
    """
    if connection.vendor != "postgresql":
        return db_now()
    ms = int(deadline_ms)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}; SELECT now()"
        )
        while cursor.description is None and cursor.nextset():
            pass
        return cursor.fetchone()[0]


def _load_orm(tenant, req: GateRequest, project_slug, environment, deadline) -> Loaded | Decision:
    """The portable read-and-lock, step for step the algorithm of ``sql/gate_prepare.sql``."""
    project = project_get(tenant=tenant, slug=project_slug)
    existing = find_decision(tenant, req.source, req.idempotency_key)
    if existing is not None:
        return existing
    policy = active_policy(tenant.id)
    ms = deadline(policy)
    now = _begin_decision(ms)
    today = now.date()
    budgets = budgets_covering(tenant=tenant, project=project, environment=environment)
    keys = [(b.id, period_bounds(b.period, today)[0]) for b in budgets]
    periods = {p.budget_id: p for p in lock_current_periods(keys)} if keys else {}
    if len(periods) < len(keys):  # first decision of a period: create it, then lock it
        budget_periods_open(
            tenant=tenant, budgets=[b for b in budgets if b.id not in periods], today=today
        )
        periods = {p.budget_id: p for p in lock_current_periods(keys)}
    ordered = [periods[b.id] for b in budgets]
    heads = ledger_heads_lock(
        tenant_id=tenant.id, chains=decision_chains(ordered, project.id, environment)
    )
    month_start, _ = period_bounds("monthly", today)
    rollups = dict(
        SpendRollup.objects.filter(
            tenant=tenant,
            project=project,
            environment=environment,
            day__gte=month_start,
            day__lte=today,
        ).values_list("day", "spent_micros")
    )
    return Loaded(
        now=now,
        project=project,
        policy=policy,
        deadline_ms=ms,
        budgets=budgets,
        periods=ordered,
        rollups=rollups,
        heads=heads,
    )


_PREPARE_SQL = "SELECT tollgate_gate_prepare(%s, %s, %s, %s, %s, %s, %s, %s)"


def _prepare(cursor, tenant, req, project_slug, environment, policy, ms: int) -> dict:
    cursor.execute(
        _PREPARE_SQL,
        [
            tenant.id,
            project_slug,
            environment,
            req.source,
            req.idempotency_key,
            None if policy.version is None else policy.sha256,
            ms,
            GENESIS_HASH,
        ],
    )
    raw = cursor.fetchone()[0]
    return json.loads(raw) if isinstance(raw, str) else raw


def _published(tenant_id: str, published: dict | None) -> CompiledPolicy:
    if published is None:
        return published_policy(tenant_id, None, None)
    return published_policy(tenant_id, published["version"], published["sha256"])


def _load_sql(tenant, req, project_slug, environment, policy, deadline) -> Loaded | Decision:
    """PostgreSQL: policy version, project, idempotency, covering budgets, locked periods, chain
    heads and rollups in one function call.

    A second call only when the published policy is not the one this process last used (its
    deadline must bound the lock waits, so the function checks before taking any lock) or for
    a period's first decision (the periods are created, then locked).
    """
    with connection.cursor() as cursor:
        for _ in range(3):
            data = _prepare(
                cursor, tenant, req, project_slug, environment, policy, deadline(policy)
            )
            if data.get("policy_changed"):
                policy = _published(tenant.id, data["policy"])
                continue
            if data["project"] is None:
                raise unknown_project(project_slug)
            if data.get("existing"):
                return Decision.objects.get(pk=data["existing"])
            if not data.get("missing_periods"):
                break
            budgets = [_budget_from(row, tenant.id) for row in data["budgets"]]
            budget_periods_open(
                tenant=tenant, budgets=budgets, today=parse_datetime(data["now"]).date()
            )
        else:  # the policy changed under us twice in a row, or the periods keep vanishing
            raise CannotDecide("error", "the policy or budgets kept changing")
        policy = _published(tenant.id, data["policy"])  # same sha; the version may be newer
    budgets = budgets_sort([_budget_from(row, tenant.id) for row in data["budgets"]])
    periods = {
        row["budget_id"]: BudgetPeriod(
            id=row["id"],
            budget_id=row["budget_id"],
            tenant_id=tenant.id,
            period_start=date.fromisoformat(row["period_start"]),
            period_end=date.fromisoformat(row["period_end"]),
            limit_micros=row["limit_micros"],
            reserved_micros=row["reserved_micros"],
            spent_micros=row["spent_micros"],
        )
        for row in data["periods"]
    }
    project = Project(id=data["project"], tenant_id=tenant.id, slug=project_slug)
    project._state.adding = False
    return Loaded(
        now=parse_datetime(data["now"]),
        project=project,
        policy=policy,
        deadline_ms=deadline(policy),
        budgets=budgets,
        periods=[periods[b.id] for b in budgets],
        rollups={date.fromisoformat(day): int(v) for day, v in data["rollups"].items()},
        heads={chain: (int(seq), head) for chain, (seq, head) in data["heads"].items()},
    )


def _budget_from(row: dict, tenant_id: str) -> Budget:
    budget = Budget(
        id=row["id"],
        tenant_id=tenant_id,
        project_id=row["project_id"],
        environment=row["environment"],
        period=row["period"],
        limit_micros=row["limit_micros"],
    )
    budget._state.adding = False
    return budget
