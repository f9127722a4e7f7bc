"""Everything a proxied call needs before it is sent, in one synchronous step (one thread hop):
authenticate, scope, entitlement, request gates, rate limits, shape caps, upstream, price,
reserve. Each refusal is a ``TollgateError`` that the proxy renders in the provider's shape.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from billing.catalog import LLM_GATEWAY
from billing.entitlements import require
from billing.gates import checks
from billing.gates.middleware import run_gates
from controlplane.core.bodies import check_json_depth
from controlplane.core.errors import TollgateError
from controlplane.core.exceptions import database_error_problem
from controlplane.tenancy.auth import authenticate_api_key
from enforcement import scopes
from enforcement.errors import EnforcementErrorCode
from enforcement.llm import estimate, limits
from enforcement.llm.gateway import CallSpec, Reserved, catalog_price, llm_reserve, output_bound
from enforcement.llm.upstream import Upstream, resolve_upstream
from enforcement.services.gate import CannotDecide, database_failure
from enforcement.services.policies import active_policy


@dataclass(frozen=True)
class Route:
    path: str
    format: str  # "openai" | "anthropic"
    provider: str  # the adapter the call goes to when the catalog says this provider
    action: str
    upstream_path: str
    streams: bool


ROUTES = {
    r.path: r
    for r in (
        Route("/v1/chat/completions", "openai", "openai", "llm.chat", "/v1/chat/completions", True),
        Route("/v1/embeddings", "openai", "openai", "llm.embeddings", "/v1/embeddings", False),
        Route("/v1/messages", "anthropic", "anthropic", "llm.messages", "/v1/messages", True),
    )
}


@dataclass
class Admitted:
    route: Route
    tenant_id: str
    api_key: object
    upstream: Upstream
    reserved: Reserved
    payload: bytes  # the body to send upstream
    stream: bool
    client_wants_usage: bool
    model: str
    end_user: str


def _invalid(message: str, field: str | None = None) -> TollgateError:
    errors = [{"field": field, "message": message, "code": "invalid"}] if field else None
    return TollgateError(EnforcementErrorCode.LLM_REQUEST_INVALID, message, errors=errors)


def _credential(headers: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    raise TollgateError(
        "AUTHENTICATION_REQUIRED",
        "Send your Tollgate API key as `Authorization: Bearer tg_...` or `x-api-key: tg_...`.",
        status=401,
    )


def _parse(body: bytes) -> dict:
    check_json_depth(body)
    try:
        data = json.loads(body)
    except ValueError:
        raise _invalid("The body is not JSON.") from None
    if not isinstance(data, dict):
        raise _invalid("The body must be a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model or len(model) > 200:
        raise _invalid("`model` is required (a model of the price catalog).", "model")
    return data


def _max_tokens(route: Route, data: dict) -> int | None:
    if route.action == "llm.embeddings":
        return 0
    names = (
        ("max_tokens",) if route.format == "anthropic" else ("max_completion_tokens", "max_tokens")
    )
    for name in names:
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _invalid(f"`{name}` must be a positive integer.", name)
        return value
    if route.format == "anthropic":
        raise _invalid("`max_tokens` is required.", "max_tokens")
    return None


def _input_tokens(route: Route, data: dict) -> int:
    if route.action == "llm.embeddings":
        return estimate.input_bound(text=data.get("input"))
    return estimate.input_bound(
        messages=data.get("messages"), system=data.get("system"), tools=data.get("tools")
    )


def _end_user(route: Route, data: dict, headers: dict[str, str]) -> str:
    user = headers.get("tollgate-end-user") or ""
    if not user and route.format == "openai" and isinstance(data.get("user"), str):
        user = data["user"]
    if not user and route.format == "anthropic":
        meta = data.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
            user = meta["user_id"]
    return user[:256]


def _idempotency_key(headers: dict[str, str]) -> str:
    """The caller's ``Idempotency-Key`` (a retry is the same call), else a fresh one."""
    key = headers.get("idempotency-key")
    if key is None:
        return f"llm:{uuid.uuid4().hex}"
    if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
        raise TollgateError(
            "VALIDATION_FAILED",
            "The Idempotency-Key header must be 1..255 printable ASCII characters.",
            errors=[{"field": "Idempotency-Key", "message": "Invalid.", "code": "invalid"}],
        )
    if key.startswith("approval:"):
        raise TollgateError(
            EnforcementErrorCode.IDEMPOTENCY_KEY_RESERVED,
            "Idempotency keys starting with 'approval:' are reserved.",
        )
    return key


def _caps(data: dict, policy) -> None:
    """The prompt-size cap: the policy's ``llm.max_prompt_bytes``, never above the
    deployment's LLM_MAX_PROMPT_BYTES."""
    caps = [c for c in (settings.LLM_MAX_PROMPT_BYTES, policy.llm_max_prompt_bytes) if c]
    cap = min(caps) if caps else None
    if cap and estimate.prompt_bytes(data) > cap:
        source = (
            "the policy's llm.max_prompt_bytes"
            if cap == policy.llm_max_prompt_bytes
            else "LLM_MAX_PROMPT_BYTES"
        )
        raise TollgateError(
            EnforcementErrorCode.LLM_REQUEST_TOO_LARGE,
            f"The prompt is larger than {cap} bytes ({source}).",
            status=413,
        )


def _upstream_payload(route: Route, data: dict, body: bytes, stream: bool) -> tuple[bytes, bool]:
    """The body to forward (OpenAI streams get ``stream_options.include_usage``)."""
    if not (stream and route.format == "openai" and route.action == "llm.chat"):
        return body, False
    options = data.get("stream_options")
    wants = isinstance(options, dict) and options.get("include_usage") is True
    if wants:
        return body, True
    data = dict(data)
    data["stream_options"] = {
        **(options if isinstance(options, dict) else {}),
        "include_usage": True,
    }
    return json.dumps(data, separators=(",", ":")).encode(), False


def admit(*, route: Route, headers: dict[str, str], body: bytes, client: str) -> Admitted:
    """Authenticate, check, price and reserve one call (raises ``TollgateError``)."""
    tenant_id = key_id = None
    try:
        try:
            api_key = authenticate_api_key(_credential(headers))
        except DatabaseError as exc:
            mapped = database_error_problem(exc)
            if mapped is None:
                raise
            raise TollgateError(
                mapped["code"],
                "Credentials cannot be checked right now. " + mapped["detail"],
                status=mapped["status"],
                headers=mapped.get("headers") or {},
            ) from None
        tenant, tenant_id, key_id = api_key.tenant, api_key.tenant_id, api_key.id
        if scopes.LLM_WRITE not in (api_key.scopes or []):
            raise TollgateError(
                "SCOPE_MISSING",
                f"This API key lacks the `{scopes.LLM_WRITE}` scope.",
                status=403,
                extra={"required_scope": scopes.LLM_WRITE},
            )
        if settings.REQUEST_GATES_ENABLED:
            blocked = run_gates("POST", route.path, checks.GateRun(), tenant_id, key_id)
            if blocked is not None:
                raise TollgateError(
                    blocked.code,
                    blocked.detail,
                    remediation=blocked.remediation,
                    status=blocked.status,
                    headers=blocked.headers,
                    extra=blocked.extra,
                )
        require(tenant, LLM_GATEWAY)
        data = _parse(body)
        policy = active_policy(tenant.id)
        _caps(data, policy)
        model = data["model"]
        stream = bool(data.get("stream")) and route.streams
        price = catalog_price(model)
        input_tokens = _input_tokens(route, data)
        output_tokens = output_bound(price, _max_tokens(route, data), policy)
        end_user = _end_user(route, data, headers)
        limits.check_rates(
            tenant_id=tenant_id,
            key_id=key_id,
            end_user=end_user,
            tokens=input_tokens + output_tokens,
        )
        provider = price.provider if price.provider in ("openai", "anthropic") else route.provider
        upstream = resolve_upstream(tenant, provider)
        payload, client_wants_usage = _upstream_payload(route, data, body, stream)
        spec = CallSpec(
            format=route.format,
            model=model,
            input_tokens=input_tokens,
            max_output_tokens=output_tokens,
            idempotency_key=_idempotency_key(headers),
            action=route.action,
            project=headers.get("tollgate-project") or None,
            environment=headers.get("tollgate-environment") or None,
            end_user=end_user,
            ttl_seconds=settings.LLM_RESERVATION_TTL_SECONDS,
        )
        try:
            reserved = llm_reserve(tenant=tenant, api_key=api_key, spec=spec, price=price)
        except CannotDecide as exc:
            raise TollgateError(
                EnforcementErrorCode.GATE_UNAVAILABLE,
                f"The gate could not decide ({exc.cause}); the call was not sent.",
                status=503,
                headers={"Retry-After": "1"},
            ) from None
        except DatabaseError as exc:
            failure = database_failure(exc, tenant, in_decision=False)
            if isinstance(failure, CannotDecide):
                raise TollgateError(
                    EnforcementErrorCode.GATE_UNAVAILABLE,
                    "The gate could not decide; the call was not sent.",
                    status=503,
                    headers={"Retry-After": "1"},
                ) from None
            raise failure from exc
        _refuse_unless_allowed(reserved)
        return Admitted(
            route=route,
            tenant_id=tenant_id,
            api_key=api_key,
            upstream=upstream,
            reserved=reserved,
            payload=payload,
            stream=stream,
            client_wants_usage=client_wants_usage,
            model=model,
            end_user=end_user,
        )
    except TollgateError as exc:
        if exc.status_code < 500:  # refusals the caller caused; an outage is not abuse
            limits.note_denial(
                reason=str(exc.code), tenant_id=tenant_id, key_id=key_id, client=client
            )
        raise
    finally:
        close_old_connections()


def _refuse_unless_allowed(reserved: Reserved) -> None:
    body = reserved.response
    reservation = body.get("reservation")
    if not reserved.created and reservation and reservation.get("state") != "pending":
        # A replay of a call that was already sent: sending it again would spend unreserved.
        raise TollgateError(
            EnforcementErrorCode.RESERVATION_RESOLVED,
            f"The call of this Idempotency-Key was already sent (its reservation is "
            f"{reservation.get('state')}); use a new Idempotency-Key for a new call.",
            status=409,
            extra={"decision_id": body["decision_id"], "reservation_id": reservation.get("id")},
        )
    approved = (body.get("approval") or {}).get("status") == "approved"
    if body["outcome"] == "REQUIRE_APPROVAL" and approved and reservation:
        return  # the same call again, now approved: its hold is still pending
    if body["outcome"] == "DENY":
        raise TollgateError(
            EnforcementErrorCode.BUDGET_EXCEEDED,
            f"Budget exceeded: {body.get('message') or body['reason_code']}",
            remediation=body.get("remediation") or None,
            status=402,
            extra={"decision_id": body["decision_id"], "reason_code": body["reason_code"]},
        )
    if body["outcome"] == "REQUIRE_APPROVAL":
        approval = body.get("approval") or {}
        raise TollgateError(
            EnforcementErrorCode.APPROVAL_REQUIRED,
            "This call needs approval before it is sent: " + (approval.get("url") or ""),
            status=402,
            extra={
                "decision_id": body["decision_id"],
                "approval_id": approval.get("id"),
                "approval_url": approval.get("url"),
            },
        )
