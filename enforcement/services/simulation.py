"""Replay stored decisions against another policy. Reads only: nothing is written or locked.

The API runs this in a worker (``services.simulation_jobs``): bounded by ``max_decisions``,
read in pages, reporting progress.

Each stored decision is re-evaluated against the balances it saw (its recorded snapshot), its
own request and context, so "after" answers "what would this policy have said then". Decisions
are independent in the replay: a different answer earlier in the window does not change the
balances later decisions saw (documented in docs/policy-reference.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from controlplane.core.errors import TollgateError
from controlplane.core.money import format_usd
from controlplane.tenancy.models import Tenant
from enforcement import engine
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Decision
from enforcement.policy.compiled import CompiledPolicy
from enforcement.policy.evaluate import evaluate, snapshot_from_dict

MAX_WINDOW = timedelta(days=93)
MAX_CHANGES = 500
OUTCOMES = ("ALLOW", "ALLOW_WITH_CREDITS", "REQUIRE_APPROVAL", "DENY")


def check_window(since: datetime | None, until: datetime | None) -> None:
    problems = []
    if since is None:
        problems.append(
            {"field": "since", "message": "Required ISO 8601 timestamp.", "code": "required"}
        )
    if until is None:
        problems.append(
            {"field": "until", "message": "Required ISO 8601 timestamp.", "code": "required"}
        )
    if not problems and since >= until:
        problems.append({"field": "until", "message": "Must be after `since`.", "code": "invalid"})
    if not problems and until - since > MAX_WINDOW:
        problems.append(
            {"field": "since", "message": "The window is at most 93 days.", "code": "invalid"}
        )
    if problems:
        raise TollgateError(
            EnforcementErrorCode.SIMULATION_WINDOW_INVALID,
            "The simulation window is invalid.",
            remediation="Send `since` and `until` (ISO 8601, with a time zone), since < until, "
            "at most 93 days apart.",
            errors=problems,
        )


def _window(tenant: Tenant, since, until, project_id, environment):
    decisions = Decision.objects.for_tenant(tenant).filter(
        created_at__gte=since, created_at__lt=until
    )
    if project_id is not None:
        decisions = decisions.filter(project_id=project_id)
    if environment:
        decisions = decisions.filter(environment=environment)
    return decisions


def simulation_count(
    *, tenant: Tenant, since, until, project_id=None, environment: str = "", limit: int
) -> int:
    """Decisions a simulation of this window replays (at most ``limit``: counting stops there)."""
    return _window(tenant, since, until, project_id, environment)[:limit].count()


def policy_simulate(
    *,
    tenant: Tenant,
    policy: CompiledPolicy,
    since: datetime,
    until: datetime,
    project_id: str | None = None,
    environment: str = "",
    max_decisions: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 100,
) -> dict[str, Any]:
    """Counts per outcome before/after and the decisions whose outcome would change.

    Reads the window in keyset pages of ``chunk`` decisions (ids are time-ordered), replays at
    most ``max_decisions`` of them (``capped`` in the result when more exist) and reports
    progress after each page.
    """
    check_window(since, until)
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    changed: list[dict[str, Any]] = []
    changed_count = evaluated = skipped = processed = 0
    capped = False
    decisions = _window(tenant, since, until, project_id, environment).only(
        "id",
        "source",
        "environment",
        "outcome",
        "reason_code",
        "amount_micros",
        "request",
        "response",
        "snapshot",
        "created_at",
    )
    last_id = ""
    while True:
        page = list(decisions.filter(id__gt=last_id).order_by("id")[:chunk])
        for decision in page:
            if max_decisions is not None and processed >= max_decisions:
                capped = True
                break
            processed += 1
            if not decision.snapshot:
                skipped += 1  # recorded before snapshots existed: cannot be replayed faithfully
                continue
            evaluated += 1
            result, old_outcome, new_outcome = _replay(policy, decision)
            before[old_outcome] += 1
            after[new_outcome] += 1
            if old_outcome == new_outcome:
                continue
            changed_count += 1
            if len(changed) < MAX_CHANGES:
                changed.append(_change(decision, result, old_outcome, new_outcome))
        if on_progress is not None:
            on_progress(processed)
        if capped or len(page) < chunk:
            break
        last_id = page[-1].id
    return {
        "window": {"since": since.isoformat(), "until": until.isoformat()},
        "policy": {"version": policy.version, "sha256": policy.sha256},
        "evaluated": evaluated,
        "skipped": skipped,
        "before": {name: before.get(name, 0) for name in OUTCOMES},
        "after": {name: after.get(name, 0) for name in OUTCOMES},
        "changed_count": changed_count,
        "changed": changed,
        "truncated": changed_count > len(changed),
        "capped": capped,
        "max_decisions": max_decisions,
    }


def _replay(policy: CompiledPolicy, decision: Decision):
    request = engine.DecisionRequest(
        amount=decision.amount_micros,
        source=decision.source,
        environment=decision.environment,
        env_class=engine.EnvClass(policy.env_class(decision.environment)),
        project=decision.request.get("project", ""),
    )
    result = evaluate(
        policy,
        request=request,
        record=decision.request,
        snapshot=snapshot_from_dict(decision.snapshot),
        context=decision.context,
    ).outcome
    return result, decision.outcome, str(result.outcome)


def _change(decision: Decision, result, old_outcome: str, new_outcome: str) -> dict[str, Any]:
    old_rule = decision.response.get("rule_id")
    return {
        "decision_id": decision.id,
        "created_at": decision.created_at.isoformat(),
        "project": decision.request.get("project", ""),
        "environment": decision.environment,
        "source": decision.source,
        "amount_usd": format_usd(decision.amount_micros),
        "before": {
            "outcome": old_outcome,
            "reason_code": decision.reason_code,
            "rule_id": old_rule,
        },
        "after": {
            "outcome": new_outcome,
            "reason_code": result.reason_code,
            "rule_id": result.rule_id,
        },
        "changed_by_rule": result.rule_id or old_rule,
    }
