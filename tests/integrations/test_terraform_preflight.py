"""POST /api/v1/gate/terraform/preflight: explicit deltas or Infracost JSON, the run's
idempotency key, the plan fingerprint, and approval continuation (issue 16 item 1)."""

from __future__ import annotations

import copy

import pytest

from enforcement.integrations.infracost import InfracostError, plan_cost
from enforcement.models import Decision, Reservation
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.approval_helpers import approve
from tests.integrations.helpers import fixture_json

pytestmark = pytest.mark.django_db
URL = "/api/v1/gate/terraform/preflight"


@pytest.fixture
def payments(tenant):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    return project


def _preflight(client, **body):
    body.setdefault("run_id", "gha-1234")
    body.setdefault("stage", "apply")
    body.setdefault("project", "payments")
    body.setdefault("environment", "prod")
    return client.post(URL, body, format="json")


@pytest.mark.parametrize(
    ("name", "monthly", "diff", "types"),
    [
        ("new_stack.json", "192.336", "192.336", {"aws_instance": 2, "aws_db_instance": 1}),
        ("scale_up.json", "2274.968", "2274.968", {"aws_instance": 4}),
        ("scale_down.json", "0", "-31.168", {"aws_instance": 1}),
    ],
)
def test_infracost_documents_are_costed_from_their_diff(name, monthly, diff, types):
    from controlplane.core.money import parse_usd

    cost = plan_cost(fixture_json("infracost", name))
    assert cost.monthly_micros == parse_usd(monthly)
    assert cost.diff_monthly_micros == parse_usd(diff, allow_negative=True)
    assert cost.resource_types == types and cost.currency == "USD"


def test_a_plan_within_budget_is_allowed_and_reserves_the_prorated_delta(client_a, payments):
    response = _preflight(client_a, infracost=fixture_json("infracost", "new_stack.json"))
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["outcome"] == "ALLOW"
    decision = Decision.objects.get(pk=answer["decision_id"])
    assert decision.source == "terraform"
    assert decision.idempotency_key == "terraform:gha-1234:apply"
    assert decision.request["monthly_delta_usd"] == "192.336"
    assert decision.request["action"] == "terraform.apply"
    attributes = decision.request["resource"]["attributes"]
    assert attributes["resource_types"] == {"aws_instance": 2, "aws_db_instance": 1}
    reserved = Reservation.objects.get(decision=decision).amount_micros
    assert 0 < reserved <= 192_336_000  # the monthly delta prorated to the days left


def test_a_plan_over_budget_is_denied(client_a, payments):
    answer = _preflight(client_a, infracost=fixture_json("infracost", "scale_up.json")).json()
    assert answer["outcome"] == "DENY" and answer["reason_code"] == "BUDGET_EXCEEDED"
    assert not Reservation.objects.exists()


def test_the_same_run_and_stage_is_a_replay_and_a_new_stage_a_new_decision(client_a, payments):
    first = _preflight(client_a, monthly_delta_usd="100.00")
    again = _preflight(client_a, monthly_delta_usd="100.00")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["idempotent_replay"] is True
    assert again.json()["decision_id"] == first.json()["decision_id"]
    plan = _preflight(client_a, monthly_delta_usd="100.00", stage="plan")
    assert plan.status_code == 201
    changed = _preflight(client_a, monthly_delta_usd="120.00")
    assert_problem(changed, 409, "IDEMPOTENCY_KEY_REUSED")


def test_expected_fingerprint_refuses_a_changed_plan(client_a, payments):
    document = fixture_json("infracost", "new_stack.json")
    first = _preflight(client_a, infracost=document).json()
    same = _preflight(client_a, infracost=document, expected_fingerprint=first["fingerprint"])
    assert same.status_code == 200 and same.json()["idempotent_replay"] is True
    changed = copy.deepcopy(document)
    changed["diffTotalMonthlyCost"] = "250.00"
    problem = assert_problem(
        _preflight(
            client_a,
            run_id="gha-1235",
            infracost=changed,
            expected_fingerprint=first["fingerprint"],
        ),
        409,
        "PLAN_CHANGED",
    )
    assert problem["expected_fingerprint"] == first["fingerprint"]
    assert problem["fingerprint"] != first["fingerprint"]
    assert Decision.objects.count() == 1


def test_approval_continuation_with_the_token(tenant, client_a, payments):
    factories.require_approval_above(tenant, "100.00")
    pending = _preflight(client_a, estimated_cost_usd="150.00").json()
    assert pending["outcome"] == "REQUIRE_APPROVAL"
    owner = factories.make_member(tenant, "olga", "owner")
    token = approve(factories.user_client(tenant, owner), pending["approval"]["id"]).json()["token"]
    resumed = _preflight(
        client_a,
        estimated_cost_usd="150.00",
        approval_token=token,
        expected_fingerprint=pending["fingerprint"],
    )
    assert resumed.status_code == 201, resumed.content
    assert resumed.json()["outcome"] == "ALLOW"
    assert resumed.json()["continues_decision_id"] == pending["decision_id"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("projects"), "infracost.projects"),
        (lambda d: d.update(currency="EUR"), "infracost.currency"),
        (lambda d: d.update(diffTotalMonthlyCost="lots"), "infracost.diffTotalMonthlyCost"),
        (lambda d: d.update(diffTotalMonthlyCost="1e999"), "infracost.diffTotalMonthlyCost"),
        (
            lambda d: d["projects"][0]["breakdown"].update(resources={"a": 1}),
            "infracost.projects[0].breakdown.resources",
        ),
        (
            lambda d: d["projects"][0]["breakdown"]["resources"][0].update(monthlyCost=[1]),
            "infracost.projects[0].breakdown.resources[0].monthlyCost",
        ),
    ],
)
def test_a_broken_infracost_document_names_the_field(client_a, payments, mutate, field):
    document = fixture_json("infracost", "new_stack.json")
    mutate(document)
    problem = assert_problem(_preflight(client_a, infracost=document), 400, "INFRACOST_INVALID")
    assert problem["errors"][0]["field"] == field
    assert problem["remediation"]


def test_infracost_or_deltas_exactly_one(client_a, payments):
    assert_problem(_preflight(client_a), 400, "VALIDATION_FAILED")
    both = _preflight(
        client_a, monthly_delta_usd="1.00", infracost=fixture_json("infracost", "new_stack.json")
    )
    assert_problem(both, 400, "VALIDATION_FAILED")


def test_a_bound_key_cannot_preflight_another_project(tenant, payments):
    from tests.integrations.helpers import key_client

    factories.make_project(tenant, "search")
    _, plaintext = factories.make_api_key(tenant, project=payments, environment="prod")
    client = key_client(plaintext)
    assert_problem(
        _preflight(client, project="search", monthly_delta_usd="1.00"), 403, "KEY_SCOPE_MISMATCH"
    )
    # Omitted project/environment come from the binding.
    ok = client.post(URL, {"run_id": "r", "monthly_delta_usd": "1.00"}, format="json")
    assert ok.status_code == 201 and ok.json()["project"] == "payments"


def test_the_parser_refuses_what_is_not_infracost():
    with pytest.raises(InfracostError):
        plan_cost([])
