"""The answer seam: the one builder of a gate answer body, for every path.

New decisions, idempotent replays, approved continuations (and their replays), dry runs and
fail-open answers all come out of ``gate_answer``, so every body has the same fields
(``GateDecisionResponseSerializer`` documents them; a test validates every path against the
OpenAPI document). A field that does not apply is ``null`` (or empty), never missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controlplane.core.money import format_usd
from enforcement.models import Decision, Reservation
from enforcement.services import approvals


def gate_answer(
    *,
    decision_id: str | None,
    outcome: str,
    evaluated_outcome: str | None,
    mode: str,
    enforced: bool,
    breach: bool,
    reason_code: str,
    message: str,
    remediation: str,
    fingerprint: str,
    amount_usd: str | None,
    project: str,
    environment: str,
    policy: Mapping[str, Any],
    created_at: str | None,
    reservation: dict | None = None,
    approval: dict | None = None,
    waterfall: Iterable[dict] = (),
    context: dict | None = None,
    rule_errors: Iterable[dict] = (),
    rule_id: str | None = None,
    idempotent_replay: bool = False,
    dry_run: bool = False,
    fail_open: bool = False,
    fail_cause: str | None = None,
    continues_decision_id: str | None = None,
) -> dict[str, Any]:
    """A gate answer body with every documented field, in one order."""
    return {
        "decision_id": decision_id,
        "outcome": outcome,
        "evaluated_outcome": evaluated_outcome,
        "mode": mode,
        "enforced": enforced,
        "breach": breach,
        "reason_code": reason_code,
        "message": message,
        "remediation": remediation,
        "fingerprint": fingerprint,
        "idempotent_replay": idempotent_replay,
        "dry_run": dry_run,
        "amount_usd": amount_usd,
        "project": project,
        "environment": environment,
        "reservation": reservation,
        "approval": approval,
        "waterfall": list(waterfall),
        "context": context,
        "rule_errors": list(rule_errors),
        "rule_id": rule_id,
        "policy": {"version": policy.get("version"), "sha256": policy.get("sha256")},
        "fail_open": fail_open,
        "fail_cause": fail_cause,
        "continues_decision_id": continues_decision_id,
        "created_at": created_at,
    }


ANSWER_FIELDS = frozenset(
    gate_answer(
        decision_id=None,
        outcome="",
        evaluated_outcome=None,
        mode="",
        enforced=False,
        breach=False,
        reason_code="",
        message="",
        remediation="",
        fingerprint="",
        amount_usd=None,
        project="",
        environment="",
        policy={},
        created_at=None,
    )
)


def reservation_body(reservation, allocations, budget_of_period: Mapping[str, str]) -> dict | None:
    """The ``reservation`` object: allocations name the budget (``ref``) and its period."""
    if reservation is None:
        return None
    return {
        "id": reservation.id,
        "amount_usd": format_usd(reservation.amount_micros),
        "state": reservation.state,
        "expires_at": reservation.expires_at.isoformat(),
        "allocations": [
            {
                "kind": a.kind,
                "ref": budget_of_period.get(a.ref, a.ref),
                "period_id": a.budget_period_id,
                "amount_usd": format_usd(a.amount_micros),
            }
            for a in allocations
        ],
    }


def waterfall_body(stages, budget_of_period: Mapping[str, str]) -> list[dict]:
    """The ``waterfall``: a budget stage names its budget (``ref``) and its period."""
    return [
        {
            "stage": str(stage.stage),
            "ref": budget_of_period.get(stage.ref, stage.ref),
            "period_id": stage.ref if stage.ref in budget_of_period else None,
            "passed": stage.passed,
            "headroom_usd": None if stage.headroom is None else format_usd(stage.headroom),
            "drawn_usd": format_usd(stage.drawn),
        }
        for stage in stages
    ]


def decision_event_data(payload: dict) -> dict | None:
    """The webhook data of a ``decision.created`` event, from the decision it refers to."""
    decision = Decision.objects.filter(pk=payload.get("decision_id")).only("id", "response").first()
    if decision is None:
        return None
    body = decision.response
    return {
        "decision_id": decision.id,
        "outcome": body["outcome"],
        "reason_code": body["reason_code"],
        "mode": body["mode"],
        "project": body["project"],
        "environment": body["environment"],
        "amount_usd": body["amount_usd"],
        "reservation_id": (body.get("reservation") or {}).get("id"),
        **(
            {"continues_decision_id": body["continues_decision_id"]}
            if body.get("continues_decision_id")
            else {}
        ),
    }


def answer_replay(decision: Decision, *, api_key=None) -> dict[str, Any]:
    """The stored answer of a decision, replayed: the live reservation and approval status.

    The same for a gate replay and a continuation's replay: the reservation's ``state`` and
    ``expires_at`` are read now (an extend or a commit shows), and a REQUIRE_APPROVAL answer's
    ``approval`` is the live one (with the token, once, for the key that asked).
    """
    stored = {k: v for k, v in decision.response.items() if k in ANSWER_FIELDS}
    stored["idempotent_replay"] = True
    reservation = stored.get("reservation")
    if reservation:
        live = (
            Reservation.objects.filter(pk=reservation["id"])
            .values_list("state", "expires_at")
            .first()
        )
        if live is not None:
            stored["reservation"] = {
                **reservation,
                "state": live[0],
                "expires_at": live[1].isoformat(),
            }
    if stored.get("approval") and not stored.get("continues_decision_id"):
        stored["approval"] = approvals.approval_replay_summary(
            decision_id=decision.id, api_key=api_key
        )
    return gate_answer(**stored)
