"""Typed views of Tollgate's answers (the JSON stays available as ``raw``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Reservation:
    id: str
    amount_usd: Decimal
    state: str
    expires_at: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Reservation:
        return cls(
            id=body["id"],
            amount_usd=Decimal(str(body.get("amount_usd") or "0")),
            state=str(body.get("state", "")),
            expires_at=body.get("expires_at"),
            raw=body,
        )


@dataclass(frozen=True)
class Decision:
    decision_id: str | None
    outcome: str
    mode: str
    enforced: bool
    reason_code: str
    message: str
    remediation: str
    reservation: Reservation | None
    approval: dict[str, Any] | None
    fail_open: bool
    idempotent_replay: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def allowed(self) -> bool:
        """ALLOW or ALLOW_WITH_CREDITS, or any outcome Tollgate does not enforce (shadow)."""
        return self.outcome in {"ALLOW", "ALLOW_WITH_CREDITS"} or not self.enforced

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Decision:
        reservation = body.get("reservation")
        return cls(
            decision_id=body.get("decision_id"),
            outcome=str(body["outcome"]),
            mode=str(body.get("mode", "")),
            enforced=bool(body.get("enforced", True)),
            reason_code=str(body.get("reason_code", "")),
            message=str(body.get("message", "")),
            remediation=str(body.get("remediation", "")),
            reservation=Reservation.from_json(reservation) if reservation else None,
            approval=body.get("approval"),
            fail_open=bool(body.get("fail_open", False)),
            idempotent_replay=bool(body.get("idempotent_replay", False)),
            raw=body,
        )
