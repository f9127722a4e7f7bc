"""Issue 17 item 7: every one of these client inputs used to be a 500; each is now a 4xx with a
code (or, for the counter overflow, recorded without loss)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from enforcement.models import BudgetPeriod, Decision
from enforcement.services.reservations import reservation_commit
from tests import factories
from tests.api_contracts import api_routes, assert_problem
from tests.enforcement.approval_helpers import approved_token, pending_approval
from tests.enforcement.approval_helpers import gate as approval_gate
from tests.enforcement.helpers import gate_service, set_gate_settings

pytestmark = pytest.mark.django_db
GATE = "/api/v1/gate/decisions"


@pytest.fixture
def payments(tenant):
    return factories.make_project(tenant, "payments")


def raw(client, url: str, text: str, **headers):
    return client.generic(
        "POST", url, text.encode("utf-8", "surrogatepass"), "application/json", **headers
    )


def gate_text(client, text: str, key: str | None = None):
    return raw(client, GATE, text, HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex)


def _list_routes() -> list[str]:
    """Every GET route of the API without path parameters."""
    return sorted({r.template for r in api_routes() if r.method == "GET" and not r.has_param})


LIST_ROUTES = [
    "/api/v1/api-keys",
    "/api/v1/budgets",
    "/api/v1/credit-grants",
    "/api/v1/decisions",
    "/api/v1/ledger",
    "/api/v1/policies",
    "/api/v1/policies/simulations",
    "/api/v1/projects",
]


def test_the_list_routes_above_are_every_paginated_route():
    assert set(LIST_ROUTES) <= set(_list_routes())


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("route", LIST_ROUTES)
@pytest.mark.parametrize(
    "query",
    [
        "limit=%C2%B2",  # "²".isdigit() is True; int("²") raises
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=1e3",
        f"cursor={_cursor('p=dec_a%00b')}",  # a NUL hidden in the base64
        f"cursor={_cursor('r=1&p=dec_x')}",  # reverse cursors are never issued
        f"cursor={_cursor('p=' + 'x' * 200)}",
        "cursor=%FF%FE",
        "cursor=!!!",
    ],
)
def test_pagination_parameters_are_400(client_a, route, query):
    assert_problem(client_a.get(f"{route}?{query}"), 400, "VALIDATION_FAILED")


@pytest.mark.parametrize("route", sorted(set(_list_routes())))
def test_no_get_route_answers_500_to_bad_pagination(client_a, route):
    response = client_a.get(f"{route}?limit=%C2%B2&cursor={_cursor('p=a%00b')}")
    assert response.status_code < 500, (route, response.content[:300])


@pytest.mark.parametrize(
    "query",
    [
        "since=2026-13-01T00:00:00Z",
        "since=2026-01-01T00:00:00%2B99:00",
        "since=2026-02-30T00:00:00Z",
        "since=0001-01-01T00:00:00%2B01:00",
        "since=yesterday",
        "until=2026-01-01T25:00:00Z",
        "outcome=FOO",
        "project=a/b",
        "project=" + "p" * 64,
        "environment=a%20b",
    ],
)
def test_decision_filters_are_400(client_a, query):
    problem = assert_problem(client_a.get(f"/api/v1/decisions?{query}"), 400, "VALIDATION_FAILED")
    assert problem["errors"][0]["field"] == query.split("=")[0]


def test_decision_filters_that_are_fine(client_a, tenant, payments):
    factories.make_budget(tenant, "100.00", project=payments)
    gate_service(tenant, micros=1_000_000)
    for query in (
        "outcome=allow",
        "since=2020-01-01T00:00:00",  # no offset: UTC
        "since=2020-01-01T00:00:00%2B02:00&until=2999-01-01T00:00:00Z",
        "project=payments&environment=prod",
    ):
        response = client_a.get(f"/api/v1/decisions?{query}")
        assert response.status_code == 200, (query, response.content)
        assert len(response.json()["results"]) == 1, query


@pytest.mark.parametrize("query", ["since=2026-13-01T00:00:00Z", "until=%2B99:00", "format=xml"])
def test_export_parameters_are_400(client_a, query):
    assert_problem(client_a.get(f"/api/v1/ledger/export?{query}"), 400, "VALIDATION_FAILED")


@pytest.mark.parametrize("query", ["chain=%E2%80%8Bbp:x", "after=led_%27", "chain=" + "c" * 100])
def test_ledger_filters_are_400(client_a, query):
    assert_problem(client_a.get(f"/api/v1/ledger?{query}"), 400, "VALIDATION_FAILED")


# --- unrepresentable JSON values, anywhere in a body -----------------------------------------


@pytest.mark.parametrize(
    ("fragment", "field"),
    [
        ('"resource": {"attributes": {"n": 1e999}}', "resource.attributes.n"),
        ('"resource": {"attributes": {"s": "\\ud800"}}', "resource.attributes.s"),
        ('"resource": {"attributes": {"\\udfff": 1}}', "resource.attributes"),
        ('"labels": {"team": "\\ud800"}', "labels.team"),
        ('"action": "\\ud800x"', "action"),
        ('"requester": "a\\udc00"', "requester"),
        ('"resource": {"attributes": {"big": 123456789012345678901234567890123456789012}}', None),
        ('"resource": {"attributes": {"neg": -9223372036854775809}}', "resource.attributes.neg"),
        ('"ttl_seconds": 1e999', "ttl_seconds"),
    ],
)
def test_unrepresentable_values_in_a_gate_body_are_400(client_a, tenant, payments, fragment, field):
    set_gate_settings(
        tenant, rules=[{"id": "r", "when": "request.amount_usd > 1000000.0", "then": "deny"}]
    )
    text = (
        '{"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00", '
        + fragment
        + "}"
    )
    before = Decision.objects.count()
    problem = assert_problem(gate_text(client_a, text), 400, "INVALID_JSON_VALUE")
    if field:
        assert problem["errors"][0]["field"] == field
    assert Decision.objects.count() == before


def test_a_39_digit_integer_reaches_a_rule_once_a_rule_exists_and_is_refused(
    client_a, tenant, payments
):
    set_gate_settings(
        tenant,
        rules=[{"id": "big", "when": "'n' in request.resource.attributes", "then": "deny"}],
    )
    factories.make_budget(tenant, "100.00", project=payments)
    fits = '{"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00", "resource": {"attributes": {"n": 9223372036854775807}}}'
    assert gate_text(client_a, fits).json()["outcome"] == "DENY"
    over = fits.replace("9223372036854775807", "1" * 40)
    assert_problem(gate_text(client_a, over), 400, "INVALID_JSON_VALUE")


@pytest.mark.parametrize(
    "usage", ['{"n": 1e999}', '{"s": "\\ud800"}', '{"n": 99999999999999999999}']
)
def test_unrepresentable_usage_on_commit_is_400(client_a, tenant, payments, usage):
    factories.make_budget(tenant, "100.00", project=payments)
    body = gate_service(tenant, micros=1_000_000)
    url = f"/api/v1/reservations/{body['reservation']['id']}/commit"
    response = raw(client_a, url, '{"actual_cost_usd": "1.00", "usage": ' + usage + "}")
    assert_problem(response, 400, "INVALID_JSON_VALUE")


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "description": "\\ud800"}',
        '{"version": 1, "decision_deadline_ms": 1e999}',
        '{"version": 1, "description": "a\\u0000b"}',
    ],
)
def test_unrepresentable_values_in_a_policy_are_400(client_a, text):
    response = raw(client_a, "/api/v1/policies", text)
    assert_problem(response, 400, "POLICY_INVALID")


# --- free-form field limits, enforced before any work -----------------------------------------


@pytest.mark.parametrize(
    ("resource_or_labels", "field"),
    [
        ({"resource": {"attributes": {f"k{i}": i for i in range(257)}}}, "resource.attributes"),
        ({"resource": {"attributes": {"x": "y" * 17_000}}}, "resource.attributes"),
        ({"resource": {"attributes": {"k" * 129: 1}}}, "resource.attributes"),
        ({"resource": {"attributes": {"a": [[[[[[[[[1]]]]]]]]]}}}, "resource.attributes"),
        ({"labels": {f"l{i}": "v" for i in range(65)}}, "labels"),
        ({"labels": {"k" * 129: "v"}}, "labels"),
    ],
)
def test_oversized_free_form_fields_are_400_before_any_work(
    client_a, tenant, payments, resource_or_labels, field
):
    before = Decision.objects.count()
    response = client_a.post(
        GATE,
        {"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00"}
        | resource_or_labels,
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    problem = assert_problem(response, 400, "VALIDATION_FAILED")
    assert problem["errors"][0]["field"] == field
    assert Decision.objects.count() == before


def test_a_padded_gate_body_is_413_before_it_is_parsed(client_a, payments):
    padding = json.dumps({f"k{i}": "v" * 20 for i in range(60_000)})
    text = (
        '{"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00", '
        f'"resource": {{"attributes": {padding}}}}}'
    )
    assert len(text) > 64 * 1024
    assert_problem(gate_text(client_a, text), 413, "PAYLOAD_TOO_LARGE")


def test_oversized_usage_on_commit_is_400(client_a, tenant, payments):
    factories.make_budget(tenant, "100.00", project=payments)
    body = gate_service(tenant, micros=1_000_000)
    response = client_a.post(
        f"/api/v1/reservations/{body['reservation']['id']}/commit",
        {"actual_cost_usd": "1.00", "usage": {f"k{i}": i for i in range(300)}},
        format="json",
    )
    assert assert_problem(response, 400, "VALIDATION_FAILED")["errors"][0]["field"] == "usage"


# --- Idempotency-Key: approval:<id> ------------------------------------------------------------


def test_the_approval_idempotency_namespace_is_reserved(client_a, tenant, payments):
    factories.require_approval_above(tenant, "100.00")
    factories.make_budget(tenant, "1000.00", project=payments)
    answer, token = approved_token(tenant, client_a)
    squatter = client_a.post(
        GATE,
        {"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"approval:{answer['approval']['id']}",
    )
    assert_problem(squatter, 400, "IDEMPOTENCY_KEY_RESERVED")
    in_body = client_a.post(
        GATE,
        {
            "project": "payments",
            "environment": "prod",
            "estimated_cost_usd": "1.00",
            "idempotency_key": "approval:apr_x",
        },
        format="json",
    )
    assert_problem(in_body, 400, "IDEMPOTENCY_KEY_RESERVED")
    follow_up = approval_gate(client_a, approval_token=token)
    assert follow_up.status_code == 201, follow_up.content
    assert follow_up.json()["reason_code"] == "APPROVED"


def test_a_continuation_key_taken_before_the_reservation_is_a_409_not_a_500(
    client_a, tenant, payments
):
    """A decision stored before ``approval:`` was reserved may hold the continuation's key."""
    factories.require_approval_above(tenant, "100.00")
    factories.make_budget(tenant, "1000.00", project=payments)
    answer = pending_approval(client_a)
    squatted = Decision.objects.get(pk=answer["decision_id"])
    Decision.objects.filter(pk=squatted.pk).update(
        idempotency_key=f"approval:{answer['approval']['id']}"
    )
    owner = factories.make_member(tenant, "owner-x", "owner")
    token = (
        factories.user_client(tenant, owner)
        .post(f"/api/v1/approvals/{answer['approval']['id']}/approve", {}, format="json")
        .json()["token"]
    )
    response = approval_gate(client_a, approval_token=token)
    assert_problem(response, 409, "IDEMPOTENCY_KEY_REUSED")


# --- counters ----------------------------------------------------------------------------------


def test_the_93rd_commit_of_100_billion_usd_is_recorded(tenant, payments):
    """Commits above the hold are recorded (money was spent): 93 x 1e17 micros overflow a
    64-bit counter; the counters are numeric(38,0), so every one is kept."""
    set_gate_settings(tenant, modes={"*": {"prod": "soft", "nonprod": "soft"}})
    budget = factories.make_budget(tenant, "1.00", project=payments)
    huge = 10**17
    for _ in range(93):
        body = gate_service(tenant, micros=1)
        reservation_commit(reservation_id=body["reservation"]["id"], actual_micros=huge)
    period = BudgetPeriod.objects.get(budget=budget)
    assert period.spent_micros == 93 * huge > 2**63 and period.reserved_micros == 0


# --- bounded pages -----------------------------------------------------------------------------


def test_a_page_stops_at_its_byte_budget_and_next_continues_after_it(
    client_a, tenant, payments, monkeypatch
):
    from controlplane.core import pagination

    factories.make_budget(tenant, "1000.00", project=payments)
    made = [gate_service(tenant, micros=1_000_000)["decision_id"] for _ in range(7)]
    one_row = len(json.dumps(client_a.get("/api/v1/decisions?limit=1").json()["results"][0]))
    monkeypatch.setattr(
        pagination.IdCursorPagination.page_within_budget,
        "__defaults__",
        (int(one_row * 2.5), pagination.SERIALIZE_CHUNK),
    )
    seen, url, pages = [], "/api/v1/decisions?limit=200", 0
    while url:
        body = client_a.get(url).json()
        assert 1 <= len(body["results"]) <= 2
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen)) and pages == 4


def test_one_row_larger_than_the_budget_is_still_served(client_a, tenant, payments, monkeypatch):
    from controlplane.core import pagination

    factories.make_budget(tenant, "1000.00", project=payments)
    for _ in range(2):
        gate_service(tenant, micros=1_000_000)
    monkeypatch.setattr(
        pagination.IdCursorPagination.page_within_budget,
        "__defaults__",
        (10, pagination.SERIALIZE_CHUNK),
    )
    body = client_a.get("/api/v1/decisions").json()
    assert len(body["results"]) == 1 and body["next"]
