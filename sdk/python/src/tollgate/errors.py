"""Exceptions raised by the Tollgate client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tollgate.client import Tollgate
    from tollgate.models import Decision


class TollgateError(Exception):
    """Base class of every error the client raises."""


class ApiError(TollgateError):
    """Tollgate answered with a problem+json error (4xx) that retrying will not change."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code: str = str(problem.get("code") or "")
        self.detail: str = str(problem.get("detail") or problem.get("title") or "")
        self.remediation: str = str(problem.get("remediation") or "")
        super().__init__(f"{status} {self.code}: {self.detail}".strip())


class Unavailable(TollgateError):
    """Tollgate could not be reached or kept answering 429/503 after every retry.

    Nothing was decided for you: treat the spend as not approved (fail closed) unless your own
    policy says otherwise.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class BudgetDenied(TollgateError):
    """The gate answered DENY: the spend would break a budget or a policy rule."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.reason_code = decision.reason_code
        super().__init__(f"{decision.reason_code}: {decision.message}")


class ApprovalRequired(TollgateError):
    """The gate answered REQUIRE_APPROVAL; the money is held while approvers decide.

    ``url`` is where approvers act. ``resume()`` waits for the approval and re-runs the same gate
    call with the approval token (same idempotency key), returning the ALLOW decision; it raises
    ``ApprovalDenied`` when the request is denied, expires or is cancelled.
    """

    def __init__(self, decision: Decision, client: Tollgate, request: dict[str, Any], key: str):
        self.decision = decision
        self.approval_id: str = (decision.approval or {}).get("id", "")
        self.url: str = (decision.approval or {}).get("url", "")
        self._client = client
        self._request = request
        self._key = key
        super().__init__(f"approval required: {self.url or self.approval_id}")

    def resume(self, *, wait: bool = True, timeout: float = 3600.0, poll_interval: float = 5.0):
        """Wait (or check once, ``wait=False``) for the approval, then continue the gate call."""
        token = self._client.wait_for_approval(
            self.approval_id, timeout=timeout if wait else 0.0, poll_interval=poll_interval
        )
        return self._client._gate_call(dict(self._request, approval_token=token), self._key)


class ApprovalDenied(TollgateError):
    """The approval ended without a token: denied, expired or cancelled."""

    def __init__(self, approval: dict[str, Any]) -> None:
        self.approval = approval
        self.status: str = str(approval.get("status", ""))
        super().__init__(f"approval {approval.get('id')} is {self.status}")


class ApprovalPending(TollgateError):
    """``resume(wait=False)`` or the wait's timeout: the approval is still pending."""

    def __init__(self, approval: dict[str, Any]) -> None:
        self.approval = approval
        super().__init__(f"approval {approval.get('id')} is still pending")
