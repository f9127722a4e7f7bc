"""Invoice reconciliation imports: a realistic FOCUS 1.0 export (AWS columns) and an OpenAI
costs page, matched to committed reservations through the API; unmatched lines reported."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from controlplane.audit.models import LedgerEntry
from enforcement.models import BudgetPeriod, ReconciliationLine, Reservation
from enforcement.reconciliation.matching import split
from tests import factories
from tests.api_contracts import assert_problem

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "billing"
IMPORTS = "/api/v1/reconciliations/imports"
NOV_14 = datetime(2026, 11, 14, 10, 0, tzinfo=UTC)


def gate_and_commit(client, *, cost: str, actual: str, resource=None, labels=None, source="api"):
    body = {
        "source": source,
        "project": "payments",
        "environment": "prod",
        "action": "compute.scale_up",
        "estimated_cost_usd": cost,
        "labels": labels or {},
    }
    if resource:
        body["resource"] = {"type": "aws_instance", "id": resource}
    decision = client.post(
        "/api/v1/gate/decisions", body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
    ).json()
    reservation_id = decision["reservation"]["id"]
    committed = client.post(
        f"/api/v1/reservations/{reservation_id}/commit", {"actual_cost_usd": actual}, format="json"
    )
    assert committed.status_code == 200, committed.content
    # The spend happened on the day the bill covers.
    Reservation.objects.filter(pk=reservation_id).update(
        created_at=NOV_14.replace(hour=9), resolved_at=NOV_14
    )
    return reservation_id


@pytest.fixture
def world(tenant, client_a):
    factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "100000.00")
    ids = {
        "res_explicit": gate_and_commit(client_a, cost="120.00", actual="118.00"),
        "res_tagged": gate_and_commit(client_a, cost="50.00", actual="40.00"),
        "res_resource": gate_and_commit(
            client_a,
            cost="3.00",
            actual="2.00",
            resource="arn:aws:ec2:us-east-1:210987654321:instance/i-0a1b2c3d4e5f60718",
        ),
        "res_labels": gate_and_commit(
            client_a, cost="10.00", actual="8.00", labels={"team": "data", "env": "prod"}
        ),
    }
    return ids


def focus_file(ids: dict) -> bytes:
    text = (FIXTURES / "focus_1_0_aws.csv").read_text()
    for name, value in ids.items():
        text = text.replace("{{" + name + "}}", value)
    return text.encode()


def upload(client, content: bytes, content_type: str, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(f"{IMPORTS}?{query}", data=content, content_type=content_type)


def test_focus_bill_invoices_what_matches_and_reports_the_rest(client_a, world):
    response = upload(client_a, focus_file(world), "text/csv", filename="focus-2026-11.csv")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["format"] == "focus_csv" and body["lines_total"] == 10
    matched = {
        line["reservation_id"]: line for line in body["lines"] if line["outcome"] == "matched"
    }
    assert set(matched) == set(world.values())
    assert matched[world["res_explicit"]]["amount_usd"] == "118.72"  # x_TollgateReservationId
    assert matched[world["res_tagged"]]["amount_usd"] == "42.30"  # tollgate-reservation tag
    # Two daily lines and a credit for the same resource id: 0.9984 + 0.9984 - 0.5.
    assert matched[world["res_resource"]]["amount_usd"] == "1.4968"
    assert matched[world["res_resource"]]["line_numbers"] == [4, 5, 6]
    assert matched[world["res_labels"]]["amount_usd"] == "7.6142"  # tags contain the labels
    assert matched[world["res_explicit"]]["adjustment_usd"] == "0.72"
    others = sorted(
        (line["line_numbers"], line["outcome"])
        for line in body["lines"]
        if line["outcome"] != "matched"
    )
    assert others == [
        ([8], "unmatched"),
        ([9], "unmatched"),
        ([10], "unmatched"),
        ([11], "invalid"),
    ]
    reasons = {line["line_numbers"][0]: line["reason"] for line in body["lines"]}
    assert "currency EUR" in reasons[9] and "unreadable" in reasons[11]
    assert body["lines_matched"] == 6 and body["lines_unmatched"] == 4
    assert body["unmatched_usd"] == "16.53"  # tax 13.41 + NAT gateway 3.12 (USD lines)
    for reservation_id in world.values():
        assert Reservation.objects.get(pk=reservation_id).state == "invoiced"
    assert LedgerEntry.objects.filter(kind="reservation.invoiced").count() == 4


def test_the_difference_is_posted_to_the_budget(client_a, world):
    period = BudgetPeriod.objects.get()
    before = period.spent_micros
    upload(client_a, focus_file(world), "text/csv")
    period.refresh_from_db()
    # billed 118.72 + 42.30 + 1.4968 + 7.6142 vs reported 118 + 40 + 2 + 8
    assert period.spent_micros - before == 2_131_000


def test_the_same_file_twice_posts_nothing_twice(client_a, world):
    first = upload(client_a, focus_file(world), "text/csv")
    again = upload(client_a, focus_file(world), "text/csv")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert LedgerEntry.objects.filter(kind="reservation.invoiced").count() == 4


def test_a_new_file_naming_invoiced_reservations_reports_them(client_a, world):
    upload(client_a, focus_file(world), "text/csv")
    corrected = focus_file(world).replace(b"118.72", b"118.90")
    body = upload(client_a, corrected, "text/csv").json()
    outcomes = {
        line["reservation_id"]: line["outcome"] for line in body["lines"] if line["reservation_id"]
    }
    assert set(outcomes.values()) == {"already_invoiced"}
    assert body["reservations_invoiced"] == 0


def test_openai_costs_are_shared_among_llm_reservations_of_the_window(client_a, world):
    first = gate_and_commit(
        client_a,
        cost="1.00",
        actual="0.30",
        source="llm",
        labels={"provider_project": "proj_payments"},
    )
    second = gate_and_commit(
        client_a,
        cost="1.00",
        actual="0.90",
        source="llm",
        labels={"provider_project": "proj_payments"},
    )
    content = (FIXTURES / "openai_costs_2026_11.json").read_bytes()
    response = upload(client_a, content, "application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    shares = {
        line["reservation_id"]: line for line in body["lines"] if line["outcome"] == "matched"
    }
    # 0.412575 + 0.8716 = 1.284175 USD in that day's bucket, split 0.30 : 0.90.
    assert shares[first]["amount_usd"] == "0.321044"
    assert shares[second]["amount_usd"] == "0.963131"
    unmatched = [line for line in body["lines"] if line["outcome"] == "unmatched"]
    assert sorted(line["external_ref"] for line in unmatched) == ["proj_payments", "proj_research"]
    assert Reservation.objects.get(pk=first).state == "invoiced"


def test_a_file_that_is_not_a_bill_is_400(client_a, world):
    response = upload(client_a, b"name,cost\nx,1\n", "text/csv")
    body = assert_problem(response, 400, "BILL_FORMAT_INVALID")
    assert {e["field"] for e in body["errors"]} >= {"BilledCost", "ChargePeriodStart"}
    assert_problem(upload(client_a, b"[1,2]", "application/json"), 400, "BILL_FORMAT_INVALID")
    assert_problem(upload(client_a, b"x", "text/plain"), 400, "VALIDATION_FAILED")


def test_imports_are_listed_and_read_back(client_a, world):
    created = upload(client_a, focus_file(world), "text/csv").json()
    listed = client_a.get(IMPORTS).json()["results"]
    assert [row["id"] for row in listed] == [created["id"]]
    detail = client_a.get(f"{IMPORTS}/{created['id']}").json()
    assert len(detail["lines"]) == ReconciliationLine.objects.count()


def test_split_always_adds_up():
    assert split(1_284_175, [300_000, 900_000]) == [321_044, 963_131]
    assert split(10, [0, 0, 0]) == [4, 3, 3]
    assert sum(split(7, [1, 1, 1])) == 7 and split(0, [5]) == [0]
    assert Decimal(sum(split(-5, [1, 1]))) == -5
