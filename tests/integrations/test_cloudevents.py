"""POST /api/v1/gate/cloudevents: CloudEvents 1.0 structured, binary and batch modes, built with
the official `cloudevents` 2.x SDK; the idempotency key is cloudevent:{source}:{id} (issue 16
item 4)."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from enforcement.models import Decision
from tests import factories
from tests.api_contracts import assert_problem
from tests.integrations.helpers import key_client

pytestmark = pytest.mark.django_db
URL = "/api/v1/gate/cloudevents"


@pytest.fixture
def bus(tenant, api_key):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    return key_client(api_key[1])


def _event(event_id="evt-1", source="//pubsub.example.com/projects/acme/topics/spend", **data):
    data = {
        "project": "payments",
        "environment": "prod",
        "estimated_cost_usd": "12.50",
        **data,
    }
    return CloudEvent(
        attributes={
            "id": event_id,
            "source": source,
            "type": "com.example.compute.scale_up",
            "datacontenttype": "application/json",
            "subject": "web-1",
        },
        data=data,
    )


def _send(client, message):
    headers = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in message.headers.items()
        if name.lower() != "content-type"
    }
    return client.generic(
        "POST", URL, message.body, content_type=message.headers["content-type"], **headers
    )


def test_structured_mode(bus):
    message = ce_http.to_structured_event(_event())
    assert message.headers["content-type"].startswith("application/cloudevents+json")
    response = _send(bus, message)
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["outcome"] == "ALLOW" and answer["reservation"]["amount_usd"] == "12.50"
    decision = Decision.objects.get(pk=answer["decision_id"])
    assert decision.source == "cloudevents"
    key = "cloudevent://pubsub.example.com/projects/acme/topics/spend:evt-1"
    assert decision.idempotency_key == key
    assert decision.request["action"] == "com.example.compute.scale_up"  # the event type


def test_binary_mode_and_redelivery_is_a_replay(bus):
    message = ce_http.to_binary_event(_event(action="compute.scale_up"))
    assert "ce-id" in message.headers and message.headers["content-type"] == "application/json"
    first = _send(bus, message)
    assert first.status_code == 201, first.content
    again = _send(bus, message)
    assert again.status_code == 200 and again.json()["idempotent_replay"] is True
    assert Decision.objects.get().request["action"] == "compute.scale_up"
    # The same id from another source is another event.
    other = _send(bus, ce_http.to_binary_event(_event(source="/other")))
    assert other.status_code == 201


def test_structured_and_binary_of_one_event_are_the_same_decision(bus):
    assert _send(bus, ce_http.to_structured_event(_event())).status_code == 201
    assert _send(bus, ce_http.to_binary_event(_event())).status_code == 200


def test_batch_mode_answers_each_event_in_order(bus):
    fmt = JSONFormat()
    events = [
        _event("a"),
        _event("b", estimated_cost_usd="5000.00"),
        _event("c", project="nope"),
    ]
    body = b"[" + b",".join(fmt.write(e) for e in events) + b"]"
    response = bus.generic("POST", URL, body, content_type="application/cloudevents-batch+json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["id"] for r in results] == ["a", "b", "c"]
    assert results[0]["status"] == 201 and results[0]["body"]["outcome"] == "ALLOW"
    assert results[1]["status"] == 201 and results[1]["body"]["outcome"] == "DENY"
    assert results[2]["status"] == 400 and results[2]["body"]["code"] == "UNKNOWN_PROJECT"
    again = bus.generic("POST", URL, body, content_type="application/cloudevents-batch+json")
    assert [r["status"] for r in again.json()["results"]] == [200, 200, 400]


def test_data_base64_is_accepted(bus):
    event = _event()
    structured = json.loads(JSONFormat().write(event))
    import base64

    structured["data_base64"] = base64.b64encode(
        json.dumps(structured.pop("data")).encode()
    ).decode()
    response = bus.post(URL, json.dumps(structured), content_type="application/cloudevents+json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("id"), "id"),
        (lambda e: e.update(specversion="0.3"), "specversion"),
        (lambda e: e.update(source=""), "source"),
        (lambda e: e.update(data="text"), "data"),
        (
            lambda e: e.update(data={"project": "payments", "estimated_cost_usd": "1e3"}),
            "data.estimated_cost_usd",
        ),
        (lambda e: e.update(datacontenttype="text/plain"), "datacontenttype"),
    ],
)
def test_invalid_events_name_the_attribute(bus, mutate, field):
    event = json.loads(JSONFormat().write(_event()))
    mutate(event)
    response = bus.post(URL, json.dumps(event), content_type="application/cloudevents+json")
    problem = assert_problem(response, 400, "CLOUDEVENT_INVALID")
    assert problem["errors"][0]["field"] == field
    assert problem["remediation"]


def test_plain_json_without_ce_headers_is_refused(bus):
    response = bus.post(URL, {"project": "payments"}, format="json")
    assert assert_problem(response, 400, "CLOUDEVENT_INVALID")["errors"][0]["field"] == (
        "content-type"
    )


def test_a_bound_key_cannot_send_events_for_another_project(tenant, bus):
    search = factories.make_project(tenant, "search")
    payments = search.tenant.projects.get(slug="payments")
    _, plaintext = factories.make_api_key(tenant, scopes=["gate:write"], project=payments)
    client = key_client(plaintext)
    response = _send(client, ce_http.to_structured_event(_event(project="search")))
    assert_problem(response, 403, "KEY_SCOPE_MISMATCH")
    assert _send(client, ce_http.to_structured_event(_event("x2"))).status_code == 201
