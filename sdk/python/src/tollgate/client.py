"""The Tollgate client: gate, reserve, commit, approvals; retries with the idempotency key."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx

from tollgate.errors import (
    ApiError,
    ApprovalDenied,
    ApprovalPending,
    ApprovalRequired,
    BudgetDenied,
    Unavailable,
)
from tollgate.models import Decision, Reservation

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0
USER_AGENT = "tollgate-sdk-python/0.1.0"


def _usd(value: str | int | float | Decimal | None) -> str | None:
    """Money as Tollgate's decimal string (at most 6 decimals); floats go through str()."""
    if value is None:
        return None
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return format(amount.normalize(), "f") if amount == amount.to_integral() else str(amount)


class Tollgate:
    """A synchronous Tollgate client (thread-safe: one ``httpx.Client`` underneath).

    ``base_url`` and ``api_key`` default to ``TOLLGATE_URL`` and ``TOLLGATE_API_KEY``. Calls that
    fail with a connection error, a timeout or 429/502/503/504 are retried ``max_retries`` times
    (honouring ``Retry-After``, capped at 30 s) with the same idempotency key, so a retried gate
    call never reserves twice; when retries run out the call raises ``Unavailable``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        base_url = base_url or os.environ.get("TOLLGATE_URL", "")
        api_key = api_key or os.environ.get("TOLLGATE_API_KEY", "")
        if not base_url:
            raise ValueError("base_url is required (or set TOLLGATE_URL)")
        if not api_key:
            raise ValueError("api_key is required (or set TOLLGATE_API_KEY)")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self._sleep = sleep
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Tollgate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            header = response.headers.get("Retry-After", "")
            try:
                return min(max(float(header), 0.0), MAX_RETRY_AFTER_SECONDS)
            except ValueError:
                pass
        return min(self.backoff * (2**attempt), MAX_RETRY_AFTER_SECONDS)

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[httpx.Response, int]:
        """(response of 2xx, attempts used); 4xx raise ApiError, exhausted retries Unavailable."""
        headers = dict(self._headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        url = self.base_url + path
        last: str = ""
        status: int | None = None
        retry_after: float | None = None
        for attempt in range(self.max_retries + 1):
            response: httpx.Response | None = None
            try:
                response = self._http.request(method, url, json=json, headers=headers)
            except httpx.TransportError as exc:
                last, status = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code < 400:
                    return response, attempt + 1
                if response.status_code not in RETRY_STATUSES:
                    raise ApiError(response.status_code, _problem(response))
                problem = _problem(response)
                last = f"{response.status_code} {problem.get('code', '')}".strip()
                status = response.status_code
            if attempt == self.max_retries:
                break
            retry_after = self._delay(attempt, response)
            self._sleep(retry_after)
        raise Unavailable(
            f"Tollgate unavailable after {self.max_retries + 1} attempt(s): {last}",
            status=status,
            retry_after=retry_after,
        )

    # -- the gate ---------------------------------------------------------------------------

    def gate(
        self,
        *,
        project: str | None = None,
        environment: str | None = None,
        action: str = "",
        estimated_cost_usd: str | int | float | Decimal | None = None,
        monthly_delta_usd: str | int | float | Decimal | None = None,
        hourly_delta_usd: str | int | float | Decimal | None = None,
        resource: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        requester: str | None = None,
        ttl_seconds: int | None = None,
        idempotency_key: str | None = None,
        source: str = "api",
    ) -> Decision:
        """Ask before spending. Returns an allowed Decision (its ``reservation`` holds the money);
        raises ``BudgetDenied`` on an enforced DENY and ``ApprovalRequired`` (with ``resume()``)
        on an enforced REQUIRE_APPROVAL. Give the same ``idempotency_key`` when you retry a step
        yourself; by default each call gets a fresh one."""
        body: dict[str, Any] = {"source": source, "action": action}
        optional = {
            "project": project,
            "environment": environment,
            "estimated_cost_usd": _usd(estimated_cost_usd),
            "monthly_delta_usd": _usd(monthly_delta_usd),
            "hourly_delta_usd": _usd(hourly_delta_usd),
            "resource": resource,
            "labels": labels,
            "requester": requester,
            "ttl_seconds": ttl_seconds,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._gate_call(body, idempotency_key or f"sdk-{uuid.uuid4()}")

    def _gate_call(self, body: dict[str, Any], key: str) -> Decision:
        response, _ = self._request(
            "POST", "/api/v1/gate/decisions", json=body, idempotency_key=key
        )
        return self._answer(Decision.from_json(response.json()), body, key)

    def _answer(self, decision: Decision, body: dict[str, Any], key: str) -> Decision:
        if decision.enforced and decision.outcome == "DENY":
            raise BudgetDenied(decision)
        if decision.enforced and decision.outcome == "REQUIRE_APPROVAL":
            raise ApprovalRequired(decision, self, body, key)
        return decision

    # -- reservations -----------------------------------------------------------------------

    def commit(
        self,
        reservation_id: str,
        *,
        actual_cost_usd: str | int | float | Decimal | None = None,
        usage: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record what was really spent (``actual_cost_usd``, or a provider ``usage`` object for
        LLM reservations); the rest of the hold is released."""
        if actual_cost_usd is None and usage is None:
            raise ValueError("commit needs actual_cost_usd or usage")
        body: dict[str, Any] = {}
        if actual_cost_usd is not None:
            body["actual_cost_usd"] = _usd(actual_cost_usd)
        if usage is not None:
            body["usage"] = usage
        return self._resolve_once(reservation_id, "commit", body, expected="committed")

    def release(self, reservation_id: str) -> dict[str, Any]:
        """Give the whole hold back (nothing was spent)."""
        return self._resolve_once(reservation_id, "release", {}, expected="released")

    def _resolve_once(
        self, reservation_id: str, verb: str, body: dict[str, Any], *, expected: str
    ) -> dict[str, Any]:
        path = f"/api/v1/reservations/{reservation_id}/{verb}"
        try:
            response, _ = self._request("POST", path, json=body)
        except ApiError as exc:
            if exc.code == "RESERVATION_RESOLVED":
                # Our own earlier attempt may have landed before its answer was lost.
                current = self.reservation(reservation_id)
                if current.get("state") == expected:
                    return current
            raise
        return response.json()

    def extend(self, reservation_id: str, ttl_seconds: int) -> dict[str, Any]:
        response, _ = self._request(
            "POST",
            f"/api/v1/reservations/{reservation_id}/extend",
            json={"ttl_seconds": ttl_seconds},
        )
        return response.json()

    def reservation(self, reservation_id: str) -> dict[str, Any]:
        response, _ = self._request("GET", f"/api/v1/reservations/{reservation_id}")
        return response.json()

    # -- approvals --------------------------------------------------------------------------

    def approval(self, approval_id: str) -> dict[str, Any]:
        response, _ = self._request("GET", f"/api/v1/approvals/{approval_id}")
        return response.json()

    def wait_for_approval(
        self, approval_id: str, *, timeout: float = 3600.0, poll_interval: float = 5.0
    ) -> str:
        """Poll until the approval carries its token (returned), ends without one
        (``ApprovalDenied``), or ``timeout`` passes (``ApprovalPending``)."""
        deadline = time.monotonic() + timeout
        while True:
            approval = self.approval(approval_id)
            status = approval.get("status")
            if status == "approved":
                token = approval.get("token")
                if not token:
                    # Approved, but the token was used or expired: nothing left to resume.
                    raise ApprovalDenied(approval)
                return str(token)
            if status != "pending":
                raise ApprovalDenied(approval)
            if time.monotonic() + poll_interval > deadline:
                raise ApprovalPending(approval)
            self._sleep(poll_interval)

    # -- spend ------------------------------------------------------------------------------

    @contextmanager
    def spend(self, *, on_error: str = "commit", **gate_args: Any) -> Iterator[Spend]:
        """Gate, run the block, then commit.

        ``with tg.spend(project=..., environment=..., estimated_cost_usd="12.00") as s:`` runs the
        block only when the gate allowed it (``BudgetDenied``/``ApprovalRequired`` otherwise).
        Set ``s.actual_cost_usd`` (or ``s.usage``) inside the block; without it the reserved
        amount is committed. If the block raises, ``on_error="commit"`` (default: the money may
        have been spent, so the estimate is charged and can be reconciled later) or
        ``"release"`` (you know nothing was spent) decides, and the exception propagates.
        """
        if on_error not in {"commit", "release"}:
            raise ValueError("on_error must be 'commit' or 'release'")
        decision = self.gate(**gate_args)
        spend = Spend(decision)
        try:
            yield spend
        except BaseException:
            if decision.reservation is not None:
                if on_error == "release":
                    self.release(decision.reservation.id)
                else:
                    reserved = decision.reservation.amount_usd
                    self.commit(decision.reservation.id, actual_cost_usd=reserved)
            raise
        if decision.reservation is not None:
            actual = spend.actual_cost_usd
            if actual is None and spend.usage is None:
                actual = decision.reservation.amount_usd  # nothing reported: the estimate
            self.commit(decision.reservation.id, actual_cost_usd=actual, usage=spend.usage)

    # -- LLM --------------------------------------------------------------------------------

    def llm_reserve(
        self,
        *,
        model: str,
        project: str | None = None,
        environment: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        system: Any = None,
        input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        format: str = "openai",
        end_user: str | None = None,
        ttl_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> Decision:
        """Reserve for one LLM call (``POST /api/v1/llm/reservations``): the most it can cost,
        from ``input_tokens`` or the prompt (``messages``, and Anthropic's ``system``), and
        ``max_output_tokens`` (else the model's maximum). ``format`` is the usage semantics
        the commit will use: ``"openai"`` or ``"anthropic"``. Commit with the provider's
        ``usage`` object through ``commit(reservation_id, usage=...)``."""
        body: dict[str, Any] = {"model": model, "format": format}
        optional = {
            "project": project,
            "environment": environment,
            "messages": messages,
            "system": system,
            "input_tokens": input_tokens,
            "max_output_tokens": max_output_tokens,
            "end_user": end_user,
            "ttl_seconds": ttl_seconds,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        key = idempotency_key or f"sdk-llm-{uuid.uuid4()}"
        response, _ = self._request(
            "POST", "/api/v1/llm/reservations", json=body, idempotency_key=key
        )
        return self._answer(Decision.from_json(response.json()), body, key)

    def wrap_openai(
        self, client: Any, *, project: str | None = None, environment: str | None = None
    ):
        """An OpenAI client whose ``chat.completions.create`` reserves first and commits the
        returned usage (streaming included)."""
        from tollgate.llm import OpenAIWrapper

        return OpenAIWrapper(self, client, project=project, environment=environment)

    def wrap_anthropic(
        self, client: Any, *, project: str | None = None, environment: str | None = None
    ):
        """An Anthropic client whose ``messages.create`` reserves first and commits the usage."""
        from tollgate.llm import AnthropicWrapper

        return AnthropicWrapper(self, client, project=project, environment=environment)


class Spend:
    """What the ``spend`` block reports back: the actual cost or the provider's usage."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.actual_cost_usd: str | int | float | Decimal | None = None
        self.usage: dict[str, Any] | None = None

    @property
    def reservation(self) -> Reservation | None:
        return self.decision.reservation


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"title": response.reason_phrase, "detail": response.text[:200]}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):  # provider-shaped errors
        error = body["error"]
        return {"code": error.get("code") or error.get("type"), "detail": error.get("message")}
    return body if isinstance(body, dict) else {"detail": str(body)[:200]}
