"""The one adapter between LLM calls and the gate: reserve with ``gate_decide``, commit with
``reservation_commit``. Nothing else in the gateway touches budgets or reservations.

A reservation freezes what will price the call: the request's ``resource`` is
``{"type": "llm.model", "id": model, "attributes": {provider, format, catalog_version,
catalog_sha256, prices, input_tokens, max_output_tokens}}``. It is part of the decision's
request (and its fingerprint), so a commit prices with exactly what was reserved even after
the catalog changed, and an idempotent replay of the same call is the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from django.db import transaction

from billing.pricing.cost import (
    UsageError,
    ceiling_micros,
    cost_micros,
    usage_from,
)
from billing.pricing.lookup import CatalogPrice, price_for
from controlplane.core.errors import TollgateError
from controlplane.core.money import parse_usd
from enforcement.errors import EnforcementErrorCode
from enforcement.models import LlmCall, Reservation
from enforcement.services.gate import GateRequest, gate_decide
from enforcement.services.reservations import reservation_commit

log = structlog.get_logger(__name__)
RESOURCE_TYPE = "llm.model"


@dataclass(frozen=True)
class CallSpec:
    """One LLM call to reserve (token bounds already computed)."""

    format: str  # "openai" | "anthropic": whose usage object and cache semantics apply
    model: str
    input_tokens: int
    max_output_tokens: int
    idempotency_key: str
    action: str = "llm.chat"
    project: str | None = None
    environment: str | None = None
    end_user: str = ""
    ttl_seconds: int | None = None


@dataclass(frozen=True)
class Reserved:
    response: dict  # the gate's answer (decision, outcome, reservation, approval)
    created: bool
    price: CatalogPrice
    frozen: dict  # the resource attributes the decision stored

    @property
    def outcome(self) -> str:
        return self.response["outcome"]

    @property
    def reservation_id(self) -> str | None:
        reservation = self.response.get("reservation")
        return reservation["id"] if reservation else None

    @property
    def amount_micros(self) -> int:
        reservation = self.response.get("reservation")
        return parse_usd(reservation["amount_usd"]) if reservation else 0


def catalog_price(model: str) -> CatalogPrice:
    """The catalog entry for ``model``, or 422 ``LLM_MODEL_UNKNOWN`` / 503 when no catalog."""
    price = price_for(model)
    if price is not None:
        return price
    from billing.services.prices import current_catalog

    if current_catalog() is None:
        raise TollgateError(
            EnforcementErrorCode.LLM_PRICE_CATALOG_EMPTY,
            "No model price catalog is loaded, so no LLM call can be priced.",
            status=503,
            headers={"Retry-After": "60"},
        )
    raise TollgateError(
        EnforcementErrorCode.LLM_MODEL_UNKNOWN,
        f"The model {model!r} is not in the price catalog, so its cost cannot be reserved.",
        status=422,
        errors=[{"field": "model", "message": "Unknown model.", "code": "invalid"}],
    )


def output_bound(price: CatalogPrice, max_tokens: int | None, policy=None) -> int:
    """``max_tokens`` when given (at most the model's maximum and the policy's cap), else the
    lower of the two."""
    limit = price.max_output_tokens
    cap = policy.llm_output_cap(price.model) if policy is not None else None
    if cap is not None:
        if max_tokens is not None and max_tokens > cap:
            raise TollgateError(
                EnforcementErrorCode.LLM_REQUEST_TOO_LARGE,
                f"max_tokens {max_tokens} is above the policy's cap for {price.model!r} ({cap}).",
                errors=[{"field": "max_tokens", "message": f"At most {cap}.", "code": "max_value"}],
                status=413,
            )
        limit = cap if limit is None else min(limit, cap)
    if max_tokens is None:
        if limit is None:
            raise TollgateError(
                EnforcementErrorCode.LLM_REQUEST_INVALID,
                f"The catalog gives no maximum output for {price.model!r}: send max_tokens.",
                errors=[{"field": "max_tokens", "message": "Required.", "code": "required"}],
            )
        return limit
    if limit is not None and max_tokens > limit:
        raise TollgateError(
            EnforcementErrorCode.LLM_REQUEST_TOO_LARGE,
            f"max_tokens {max_tokens} is above the maximum output of {price.model!r} ({limit}).",
            errors=[{"field": "max_tokens", "message": f"At most {limit}.", "code": "max_value"}],
        )
    return max_tokens


def llm_reserve(*, tenant, api_key, spec: CallSpec, price: CatalogPrice) -> Reserved:
    """Reserve the most this call can cost, through the gate (one transaction)."""
    frozen = {
        "provider": price.provider,
        "format": spec.format,
        "catalog_version": price.catalog_version,
        "catalog_sha256": price.catalog_sha256,
        "prices": price.prices,
        "input_tokens": spec.input_tokens,
        "max_output_tokens": spec.max_output_tokens,
    }
    labels = {"actor": actor_of(api_key)}
    if spec.end_user:
        labels["end_user"] = spec.end_user[:256]
    result = gate_decide(
        tenant=tenant,
        api_key=api_key,
        req=GateRequest(
            source="llm",
            idempotency_key=spec.idempotency_key,
            project=spec.project,
            environment=spec.environment,
            action=spec.action,
            resource={"type": RESOURCE_TYPE, "id": spec.model, "attributes": frozen},
            estimated_micros=ceiling_micros(
                price.prices, input_tokens=spec.input_tokens, output_tokens=spec.max_output_tokens
            ),
            labels=labels,
            requester=spec.end_user[:256],
            ttl_seconds=spec.ttl_seconds,
        ),
    )
    return Reserved(response=result.response, created=result.created, price=price, frozen=frozen)


def actor_of(api_key) -> str:
    """``user`` when the key acts for a person, ``system`` for a service key."""
    return LlmCall.Actor.USER if api_key is not None and api_key.user_id else LlmCall.Actor.SYSTEM


def llm_commit(
    *,
    reservation_id: str,
    frozen: dict,
    usage: dict | None,
    surface: str,
    model: str,
    api_key=None,
    end_user: str = "",
    estimate_reason: str = "",
    upstream_status: int | None = None,
    reserved_micros: int | None = None,
) -> LlmCall:
    """Commit a call from its provider usage with the frozen prices (one transaction).

    ``usage`` None means it never arrived: the whole reservation is committed, marked
    estimated and flagged for reconciliation (never released: the provider may have charged).
    An upstream error answered without usage commits zero (the provider charges nothing).
    """
    try:
        counts = usage_from(frozen["format"], usage) if usage is not None else None
    except UsageError as exc:
        raise TollgateError(EnforcementErrorCode.LLM_USAGE_INVALID, str(exc)) from None
    estimated = counts is None and estimate_reason != "upstream_error"
    with transaction.atomic():
        if counts is not None:
            actual = cost_micros(frozen["prices"], counts)
        elif estimated:
            if reserved_micros is None:
                reserved_micros = Reservation.objects.values_list("amount_micros", flat=True).get(
                    pk=reservation_id
                )
            actual = reserved_micros
        else:
            actual = 0
        record = {"format": frozen["format"], "provider": frozen["provider"], "model": model}
        if usage is not None:
            record["provider_usage"] = usage
        if estimated:
            record.update(estimated=True, needs_reconciliation=True, reason=estimate_reason)
        reservation, _info = reservation_commit(
            reservation_id=reservation_id, actual_micros=actual, usage=record
        )
        call = LlmCall.objects.create(
            tenant_id=reservation.tenant_id,
            reservation=reservation,
            surface=surface,
            provider=frozen["provider"],
            model=model,
            catalog_version=frozen["catalog_version"],
            catalog_sha256=frozen["catalog_sha256"],
            api_key=api_key,
            actor=actor_of(api_key),
            end_user=end_user[:256],
            input_tokens=counts.input if counts else 0,
            output_tokens=counts.output if counts else 0,
            cache_read_tokens=counts.cache_read if counts else 0,
            cache_creation_tokens=counts.cache_creation if counts else 0,
            cost_micros=actual,
            estimated=estimated,
            needs_reconciliation=estimated,
            estimate_reason=estimate_reason,
            upstream_status=upstream_status,
        )
    if estimated:
        log.warning(
            "llm_commit_estimated",
            reservation=reservation_id,
            reason=estimate_reason,
            amount=actual,
        )
    return call


def frozen_of(reservation: Reservation) -> tuple[str, dict] | None:
    """(model, frozen attributes) when ``reservation`` was made for an LLM call, else None."""
    resource = (reservation.decision.request or {}).get("resource") or {}
    if resource.get("type") != RESOURCE_TYPE or not isinstance(resource.get("attributes"), dict):
        return None
    return resource.get("id", ""), resource["attributes"]


def llm_commit_reservation(*, reservation: Reservation, usage, api_key=None) -> Reservation:
    """``POST /reservations/{id}/commit`` without ``actual_cost_usd``: price ``usage`` with the
    prices this LLM reservation froze (400 for any other reservation or a missing usage)."""
    frozen = frozen_of(reservation)
    if frozen is None:
        raise TollgateError(
            "VALIDATION_FAILED",
            "actual_cost_usd is required (only LLM reservations are priced from usage).",
            errors=[{"field": "actual_cost_usd", "message": "Required.", "code": "required"}],
        )
    if not isinstance(usage, dict) or not usage:
        raise TollgateError(
            EnforcementErrorCode.LLM_USAGE_INVALID,
            "Send the provider's `usage` object (or `actual_cost_usd`).",
            errors=[{"field": "usage", "message": "Required.", "code": "required"}],
        )
    model, attributes = frozen
    labels = (reservation.decision.request or {}).get("labels") or {}
    call = llm_commit(
        reservation_id=reservation.pk,
        frozen=attributes,
        usage=usage,
        surface=LlmCall.Surface.API,
        model=model,
        api_key=api_key,
        end_user=labels.get("end_user", ""),
    )
    return call.reservation


PROXY_ACTIONS = ("llm.chat", "llm.embeddings", "llm.messages")


def llm_commit_abandoned(*, older_than_seconds: int, batch: int = 100) -> int:
    """Commit proxy reservations whose proxy never committed them (its process died mid-call)
    as estimated, before the expiry sweep would release them: the provider may have charged.

    Only the proxy's own calls (``PROXY_ACTIONS``); a reservation made through
    ``/api/v1/llm/reservations`` is its caller's to commit. Safe on any number of workers: a
    reservation committed meanwhile is skipped (``reservation_commit`` refuses a resolved one).
    """
    from datetime import timedelta

    from controlplane.core.clock import db_now

    cutoff = db_now() - timedelta(seconds=older_than_seconds)
    stale = list(
        Reservation.objects.filter(
            state=Reservation.State.PENDING,
            created_at__lte=cutoff,
            decision__source="llm",
            decision__request__action__in=PROXY_ACTIONS,
        )
        .select_related("decision")
        .order_by("created_at")[:batch]
    )
    done = 0
    for reservation in stale:
        frozen = frozen_of(reservation)
        if frozen is None:
            continue
        model, attributes = frozen
        try:
            llm_commit(
                reservation_id=reservation.pk,
                frozen=attributes,
                usage=None,
                surface=LlmCall.Surface.PROXY,
                model=model,
                end_user=((reservation.decision.request or {}).get("labels") or {}).get(
                    "end_user", ""
                ),
                estimate_reason="proxy_lost",
                reserved_micros=reservation.amount_micros,
            )
            done += 1
        except TollgateError:
            continue  # resolved meanwhile (the proxy committed it after all)
    return done
