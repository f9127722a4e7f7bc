"""The request seam: what a gate call asks, its fingerprint, and the checks before any lock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from controlplane.core.canonical import fingerprint
from controlplane.core.errors import TollgateError
from controlplane.core.money import format_usd
from controlplane.tenancy.models import ApiKey
from enforcement import engine
from enforcement.errors import EnforcementErrorCode
from enforcement.periods import days_left_including_today
from enforcement.policy.compiled import CompiledPolicy


@dataclass
class GateRequest:
    """A validated gate call (money already in micro-dollars).

    ``dry_run``: decide exactly as usual but persist nothing (no decision, reservation, ledger
    entry or counter change); the answer says ``dry_run: true``. ``deadline_ms``: a deadline for
    this call, never above the policy's (a caller with a tighter timeout of its own).
    """

    source: str
    idempotency_key: str
    project: str | None = None
    environment: str | None = None
    action: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    estimated_micros: int | None = None
    monthly_micros: int | None = None
    hourly_micros: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    requester: str = ""
    ttl_seconds: int | None = None
    approval_token: str | None = None
    dry_run: bool = False
    deadline_ms: int | None = None


@dataclass
class GateResult:
    """A gate answer: the body (see ``answer``) and whether a new decision was recorded."""

    response: dict[str, Any]
    created: bool


class CannotDecide(Exception):
    """The decision could not be made: the caller answers by the fail mode (``gate_fail_answer``).

    Raised after the transaction rolled back, so nothing of the decision was written. Only the
    ``FAIL_MODE_CAUSES`` (the database is unreachable, or the decision deadline passed) let the
    environment's fail mode answer; any other cause fails closed, so neither a bug nor anything
    a client sends can turn into a fail-open ALLOW.
    """

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause  # "database" | "deadline" | "error" (the last always fails closed)
        self.detail = detail


# The causes that let the environment's fail mode answer: the database is unreachable, or the
# decision deadline Tollgate set itself passed. Everything else fails closed.
FAIL_MODE_CAUSES = frozenset({"database", "deadline"})


def money(value: int | None) -> str | None:
    return None if value is None else format_usd(value)


def _decision_fields(req: GateRequest, project: str, environment: str) -> dict:
    """The fields a decision depends on, as the API names them."""
    return {
        "source": req.source,
        "project": project,
        "environment": environment,
        "action": req.action,
        "resource": req.resource,
        "estimated_cost_usd": money(req.estimated_micros),
        "monthly_delta_usd": money(req.monthly_micros),
        "hourly_delta_usd": money(req.hourly_micros),
        "labels": req.labels,
        "requester": req.requester,
    }


def request_fingerprint(req: GateRequest, project: str, environment: str) -> str:
    """sha256 over the decision-relevant fields (not ttl, token, dry run or idempotency key)."""
    return fingerprint(_decision_fields(req, project, environment))


def request_record(req: GateRequest, project: str, environment: str) -> dict:
    """The request as a decision stores it (and simulations replay it)."""
    return {
        **_decision_fields(req, project, environment),
        "ttl_seconds": req.ttl_seconds,
        "idempotency_key": req.idempotency_key,
    }


def scope_names(api_key: ApiKey | None, req: GateRequest) -> tuple[str, str]:
    """The project slug and environment of a call (from the body, else the key's binding)."""
    project_slug = req.project or (api_key.project.slug if api_key and api_key.project_id else None)
    environment = req.environment or (api_key.environment if api_key else "") or ""
    errors = []
    if not project_slug:
        errors.append({"field": "project", "message": "Required.", "code": "required"})
    if not environment:
        errors.append({"field": "environment", "message": "Required.", "code": "required"})
    if errors:
        raise TollgateError(
            "VALIDATION_FAILED",
            "project and environment are required (or bind them to the API key).",
            errors=errors,
        )
    key_binding_check(api_key, project_slug, environment)
    return project_slug, environment


def key_binding_check(api_key: ApiKey | None, project_slug: str, environment: str | None) -> None:
    """403 ``KEY_SCOPE_MISMATCH`` unless (project, environment) lies inside the key's binding.

    The one check for the gate and for consuming an approval token (a bound key acts only
    inside its binding).
    """
    if api_key is None:
        return
    if api_key.project_id and api_key.project.slug != project_slug:
        raise TollgateError(
            EnforcementErrorCode.KEY_SCOPE_MISMATCH,
            f"This API key is bound to project {api_key.project.slug!r}.",
            remediation="Use a key for this project, or omit `project`.",
            status=403,
        )
    if api_key.environment and environment and api_key.environment != environment:
        raise TollgateError(
            EnforcementErrorCode.KEY_SCOPE_MISMATCH,
            f"This API key is bound to environment {api_key.environment!r}.",
            remediation="Use a key for this environment, or omit `environment`.",
            status=403,
        )


def check_request(req: GateRequest) -> None:
    """The checks that need no database: a cost, a sane per-call deadline, no dry-run spending."""
    if req.estimated_micros is None and req.monthly_micros is None:
        raise TollgateError(
            EnforcementErrorCode.COST_REQUIRED,
            "Send estimated_cost_usd (what to reserve now) or monthly_delta_usd.",
            errors=[{"field": "estimated_cost_usd", "message": "Required.", "code": "required"}],
        )
    if req.deadline_ms is not None and req.deadline_ms < 1:
        raise TollgateError(
            "VALIDATION_FAILED",
            "deadline_ms must be at least 1 (the policy's deadline caps it).",
            errors=[{"field": "deadline_ms", "message": "At least 1.", "code": "min_value"}],
        )
    if req.dry_run and req.approval_token:
        raise TollgateError(
            "VALIDATION_FAILED",
            "A dry run records nothing, so it cannot spend an approval token.",
            errors=[{"field": "approval_token", "message": "Not in a dry run.", "code": "invalid"}],
        )


def checked_ttl(req: GateRequest, policy: CompiledPolicy) -> int:
    return ttl_checked(req.ttl_seconds, policy)


def ttl_checked(ttl_seconds: int | None, policy: CompiledPolicy) -> int:
    """A reservation TTL: the given one within 1..the policy's maximum, else its default."""
    ttl = ttl_seconds if ttl_seconds is not None else policy.default_ttl_seconds
    if not 1 <= ttl <= policy.max_ttl_seconds:
        raise TollgateError(
            EnforcementErrorCode.TTL_OUT_OF_RANGE,
            f"ttl_seconds must be between 1 and {policy.max_ttl_seconds} (policy).",
            errors=[{"field": "ttl_seconds", "message": "Out of range.", "code": "invalid"}],
        )
    return ttl


def deadline_ms(req: GateRequest, policy: CompiledPolicy) -> int:
    """The deadline of this call: the policy's, or the caller's when tighter."""
    policy_ms = int(policy.deadline_ms)
    return policy_ms if req.deadline_ms is None else min(policy_ms, int(req.deadline_ms))


def amount(req: GateRequest, today: date, period: str = "monthly") -> int:
    """What the call reserves: the estimate, else the monthly delta prorated to the days left."""
    if req.estimated_micros is not None:
        return req.estimated_micros
    days, left = days_left_including_today(period, today)
    return engine.prorate_monthly(req.monthly_micros, days_in_period=days, days_left=left)
