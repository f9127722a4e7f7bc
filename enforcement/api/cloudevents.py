"""CloudEvents 1.0 over HTTP: structured, binary and batch modes (API.md).

An event's ``data`` carries the gate request fields; its idempotency key is
``cloudevent:{source}:{id}`` (the CloudEvents spec makes source + id unique per event, so a
redelivered event is a replay). One event answers like the gate (201 new / 200 replay); a batch
answers 200 with one result per event, in order.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import unquote

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.response import Response

from controlplane.core.errors import TollgateError
from controlplane.core.jsonlimits import ATTRIBUTES_LIMITS, free_form_problem, unrepresentable
from controlplane.core.parsers import StrictJSONParser
from controlplane.tenancy.api.views_base import CHECKED_IN_VIEW, TenantScopedAPIView
from enforcement import scopes
from enforcement.api import serializers as s
from enforcement.api.gatecall import gate_call, gate_request_from
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Decision
from enforcement.services.actions import action_request

SOURCE = "cloudevents"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BATCH = 100
REQUIRED = ("id", "source", "specversion", "type")
MAX_ACTIONS = 10
ACTION_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class CloudEventParser(StrictJSONParser):
    media_type = STRUCTURED


class CloudEventBatchParser(StrictJSONParser):
    media_type = BATCH


def _invalid(field: str, message: str) -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.CLOUDEVENT_INVALID,
        f"The CloudEvent is not usable: {field}: {message}",
        errors=[{"field": field, "message": message, "code": "invalid"}],
    )


def _json_type(content_type: str | None) -> bool:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _structured_data(event: dict):
    if "data_base64" in event:
        if not _json_type(event.get("datacontenttype")):
            raise _invalid("datacontenttype", "data must be JSON (application/json).")
        try:
            raw = base64.b64decode(str(event["data_base64"]), validate=True)
            data = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise _invalid("data_base64", "Not base64 of a JSON document.") from exc
        problem = unrepresentable(data)
        if problem is not None:
            raise _invalid("data_base64", problem[1])
        return data
    if not _json_type(event.get("datacontenttype")):
        raise _invalid("datacontenttype", "data must be JSON (application/json).")
    return event.get("data")


def _checked(event) -> dict:
    """The attributes of one event, validated (CloudEvents 1.0 required attributes)."""
    if not isinstance(event, dict):
        raise _invalid("event", "Expected a JSON object.")
    for name in REQUIRED:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise _invalid(name, "Required: a non-empty string.")
    if event["specversion"] != "1.0":
        raise _invalid("specversion", f"Only 1.0 is accepted, not {event['specversion'][:10]!r}.")
    return event


def _requested_actions(data: dict) -> list[dict]:
    """``data.actions``: follow-ups the event requests with its decision (at most 10)."""
    actions = data.get("actions") or []
    if not isinstance(actions, list) or len(actions) > MAX_ACTIONS:
        raise _invalid("data.actions", f"Expected a list of at most {MAX_ACTIONS} actions.")
    for index, action in enumerate(actions):
        kind = action.get("kind") if isinstance(action, dict) else None
        if not isinstance(kind, str) or not ACTION_KIND.fullmatch(kind):
            raise _invalid(f"data.actions[{index}].kind", "Required: a name like notify.")
        params = action.get("params", {})
        if not isinstance(params, dict) or free_form_problem(params, ATTRIBUTES_LIMITS):
            raise _invalid(f"data.actions[{index}].params", "Expected a small JSON object.")
    return actions


def _gate_request(event: dict, data):
    if not isinstance(data, dict):
        raise _invalid("data", "Required: a JSON object of gate request fields.")
    fields = {k: v for k, v in data.items() if k not in ("source", "actions")}
    body = s.GateDecisionRequestSerializer(data=fields)
    if not body.is_valid():
        errors = [
            {"field": f"data.{name}", "message": str(messages[0]), "code": "invalid"}
            for name, messages in body.errors.items()
        ]
        raise TollgateError(
            EnforcementErrorCode.CLOUDEVENT_INVALID,
            "The event's data is not a gate request: "
            + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            errors=errors,
        )
    fields = dict(body.validated_data)
    fields.setdefault("action", "")
    fields["action"] = fields["action"] or event["type"][:200]
    key = f"cloudevent:{event['source']}:{event['id']}"
    if len(key) > 255 or not key.isascii() or not key.isprintable():
        raise _invalid("id", "source + id must be printable ASCII, at most 240 characters.")
    return gate_request_from(fields, source=SOURCE, idempotency_key=key)


class CloudEventsView(TenantScopedAPIView):
    required_scopes = {"POST": scopes.GATE_WRITE}
    bound_keys = {"POST": CHECKED_IN_VIEW}  # the gate refuses a project/env outside the binding
    parser_classes = [StrictJSONParser, CloudEventParser, CloudEventBatchParser]

    @extend_schema(
        operation_id="gate_cloudevents",
        request={
            STRUCTURED: OpenApiTypes.OBJECT,
            BATCH: {"type": "array", "items": {"type": "object"}},
            "application/json": OpenApiTypes.OBJECT,
        },
        # 200 is a replay (the gate's answer), a fail-open answer, or a batch's `results`.
        responses={201: s.GateDecisionResponseSerializer, 200: OpenApiTypes.OBJECT},
        description="CloudEvents 1.0: structured (`application/cloudevents+json`), binary "
        "(`ce-*` headers, the body is `data`) or batch (`application/cloudevents-batch+json`, "
        "200 with `results`, one per event). `data` holds the gate request fields; the "
        "idempotency key is `cloudevent:{source}:{id}`.",
    )
    def post(self, request):
        media = (request.content_type or "").split(";")[0].strip().lower()
        if media == BATCH:
            return self._batch(request.data)
        if media == STRUCTURED:
            event = _checked(request.data)
            return self._one(event, _structured_data(event))
        event = {
            name[3:].lower(): unquote(value)  # percent-encoded (HTTP binding 3.1.3.2)
            for name, value in request.headers.items()
            if name.lower().startswith("ce-")
        }
        if not event:
            raise _invalid(
                "content-type",
                f"Send {STRUCTURED}, {BATCH}, or a binary-mode event with ce-* headers.",
            )
        return self._one(_checked(event), request.data)

    def _decide(self, event: dict, data) -> tuple[dict, int]:
        req = _gate_request(event, data)
        requested = _requested_actions(data)
        answer, code = gate_call(tenant=self.tenant, api_key=self.request.auth, req=req)
        if requested and answer.get("decision_id"):
            decision = Decision.objects.select_related("project").get(pk=answer["decision_id"])
            answer = {**answer, "actions": []}
            for index, action in enumerate(requested):
                row, _ = action_request(
                    tenant=self.tenant,
                    kind=action["kind"],
                    params=action.get("params") or {},
                    project=decision.project,
                    environment=decision.environment,
                    decision=decision,
                    requested_by=f"cloudevent:{event['source']}"[:200],
                    idempotency_key=f"{req.idempotency_key}:action:{index}"[:255],
                )
                answer["actions"].append({"id": row.id, "kind": row.kind, "state": row.state})
        return answer, code

    def _one(self, event: dict, data) -> Response:
        answer, code = self._decide(event, data)
        return Response(answer, status=code)

    def _batch(self, events) -> Response:
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
            raise _invalid("batch", f"Expected a JSON array of 1..{MAX_BATCH} events.")
        results = []
        for event in events:
            try:
                checked = _checked(event)
                answer, code = self._decide(checked, _structured_data(checked))
                results.append({"id": checked["id"], "status": code, "body": answer})
            except TollgateError as exc:
                results.append(
                    {
                        "id": event.get("id") if isinstance(event, dict) else None,
                        "status": exc.status_code,
                        "body": {"code": exc.code, "detail": exc.message, "errors": exc.errors},
                    }
                )
        return Response({"results": results}, status=200)
