"""Every body the gate can answer validates against the OpenAPI response schema, and every path
(new, replay, continuation, its replay, dry run, fail-open) returns the same set of fields.

The schema is the generated document itself (drf-spectacular), read strictly: an undocumented
field fails (``additionalProperties: false`` on every object of the answer), as does a field
the schema requires and a body omits. OpenAPI 3.0's ``nullable`` becomes JSON Schema's
``anyOf [schema, null]``, as schemathesis reads it.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft202012Validator

from controlplane.audit.models import LedgerEntry
from enforcement.services.gate import GateRequest, gate_decide
from enforcement.services.gate.answer import ANSWER_FIELDS
from tests import factories
from tests.enforcement.approval_helpers import approved_token
from tests.enforcement.helpers import gate_service, set_gate_settings

pytestmark = [pytest.mark.django_db, pytest.mark.both_stores]
URL = "/api/v1/gate/decisions"


def _json_schema(schema):
    """OpenAPI 3.0 -> JSON Schema: ``nullable`` as ``anyOf null``; objects closed."""
    if isinstance(schema, list):
        return [_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) for k, v in schema.items() if k != "nullable"}
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def answer_schema():
    document = SchemaGenerator().get_schema(request=None, public=True)
    operation = document["paths"]["/api/v1/gate/decisions"]["post"]
    components = _json_schema(document["components"]["schemas"])
    schemas = {}
    for code in ("200", "201"):
        schema = _json_schema(operation["responses"][code]["content"]["application/json"]["schema"])
        schemas[code] = {**schema, "components": {"schemas": components}}
    return schemas


def _valid(schema, body: dict) -> None:
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert set(body) == ANSWER_FIELDS  # every path answers every field


def _check(schemas, response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    _valid(schemas[str(status)], body)
    return body


def _gate(client, key=None, **body):
    body.setdefault("project", "payments")
    body.setdefault("environment", "prod")
    body.setdefault("estimated_cost_usd", "10.00")
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex)


@pytest.fixture
def world(tenant):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "100.00", project=project)
    factories.make_grant(tenant, "50.00")
    return project


def test_new_decisions_and_replays_match_the_schema(client_a, tenant, world, answer_schema):
    allowed = _check(answer_schema, _gate(client_a, key="a"), 201)
    assert allowed["reason_code"] == "WITHIN_BUDGET" and allowed["reservation"]
    credits = _check(answer_schema, _gate(client_a, estimated_cost_usd="120.00"), 201)
    assert credits["outcome"] == "ALLOW_WITH_CREDITS"
    denied = _check(answer_schema, _gate(client_a, estimated_cost_usd="900.00"), 201)
    assert denied["outcome"] == "DENY" and denied["reservation"] is None
    replay = _check(answer_schema, _gate(client_a, key="a"), 200)
    assert replay["idempotent_replay"] is True
    assert replay["reservation"]["expires_at"] == allowed["reservation"]["expires_at"]

    set_gate_settings(tenant, modes={"*": {"prod": "soft", "nonprod": "shadow"}})
    soft = _check(answer_schema, _gate(client_a, estimated_cost_usd="900.00"), 201)
    assert soft["breach"] is True and soft["outcome"] == "ALLOW"
    shadow = _check(answer_schema, _gate(client_a, environment="dev"), 201)
    assert shadow["mode"] == "shadow" and shadow["reservation"] is None


def test_rule_error_and_unbudgeted_answers_match_the_schema(client_a, tenant, answer_schema):
    factories.make_project(tenant, "payments")
    unbudgeted = _check(answer_schema, _gate(client_a), 201)
    assert unbudgeted["reason_code"] == "UNBUDGETED"
    set_gate_settings(
        tenant,
        rules=[{"id": "broken", "when": "request.labels.nope > 1", "then": "deny"}],
    )
    body = _check(answer_schema, _gate(client_a), 201)
    assert body["rule_errors"] and body["rule_errors"][0]["rule_id"] == "broken"


def test_approval_continuation_and_their_replays_match_the_schema(
    client_a, tenant, world, answer_schema
):
    factories.require_approval_above(tenant, "5.00")
    answer, token = approved_token(tenant, client_a, key="ci-1")
    _valid(answer_schema["201"], answer)
    pending_replay = _check(
        answer_schema,
        _gate(client_a, key="ci-1", requester="ci@example.com", estimated_cost_usd="150.00"),
        200,
    )
    assert pending_replay["approval"]["status"] == "approved"
    assert pending_replay["approval"]["token"] == token
    body = {"requester": "ci@example.com", "estimated_cost_usd": "150.00", "approval_token": token}
    continued = _check(answer_schema, _gate(client_a, key="ci-2", **body), 201)
    assert continued["continues_decision_id"] == answer["decision_id"]
    again = _check(answer_schema, _gate(client_a, key="ci-2", **body), 200)
    assert again["idempotent_replay"] is True
    assert again["reservation"]["expires_at"] == continued["reservation"]["expires_at"]
    assert {k: v for k, v in again.items() if k != "idempotent_replay"} == {
        k: v for k, v in continued.items() if k != "idempotent_replay"
    }


def test_fail_open_answer_matches_the_schema(client_a, tenant, world, answer_schema):
    gate_service(tenant, micros=1_000_000)  # periods and chains exist
    set_gate_settings(tenant, fail_modes={"prod": "open", "nonprod": "open"})
    table = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION tollgate_test_fail() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
            "'injected' USING ERRCODE = '57P01'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f'CREATE TRIGGER tollgate_test_fail AFTER INSERT ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION tollgate_test_fail()"
        )
    body = _check(answer_schema, _gate(client_a), 200)
    assert body["fail_open"] is True and body["fail_cause"] == "database"
    assert body["decision_id"] is None and body["amount_usd"] == "10.00"


def test_dry_run_answer_matches_the_schema_and_writes_nothing(tenant, world, answer_schema):
    before = (LedgerEntry.objects.count(),)
    result = gate_decide(
        tenant=tenant,
        api_key=None,
        req=GateRequest(
            source="api",
            idempotency_key="dry",
            project="payments",
            environment="prod",
            estimated_micros=10_000_000,
            dry_run=True,
        ),
    )
    assert result.created is False
    _valid(answer_schema["200"], result.response)
    assert result.response["dry_run"] is True and result.response["decision_id"] is None
    assert (LedgerEntry.objects.count(),) == before
