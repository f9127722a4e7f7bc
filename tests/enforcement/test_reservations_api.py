"""Reservation lifecycle over HTTP: get, commit, release, extend, late commit, reconciliation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from controlplane.audit.models import LedgerEntry, OutboxEvent
from controlplane.audit.verify import verify_ledger
from controlplane.core.clock import db_now
from enforcement.models import BudgetPeriod, CreditGrant, Reservation, SpendRollup
from enforcement.services.reservations import reservations_expire
from tests import factories
from tests.api_contracts import IsolationCase, TenantIsolationContract, assert_problem
from tests.enforcement.helpers import gate_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def payments(tenant):
    return factories.make_project(tenant, "payments")


@pytest.fixture
def budget(tenant, payments):
    return factories.make_budget(tenant, "100.00", project=payments)


def _period(budget) -> BudgetPeriod:
    return BudgetPeriod.objects.get(budget=budget)


def _reserve(tenant, micros=40_000_000, **kw) -> str:
    body = gate_service(tenant, micros=micros, **kw)
    assert body["reservation"], body
    return body["reservation"]["id"]


def _expire_now(reservation_id: str) -> None:
    Reservation.objects.filter(pk=reservation_id).update(expires_at=db_now() - timedelta(seconds=1))
    assert reservations_expire() >= 1


def _metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_get_reservation(client_a, tenant, budget):
    rid = _reserve(tenant)
    body = client_a.get(f"/api/v1/reservations/{rid}").json()
    assert body["id"] == rid and body["state"] == "pending"
    assert body["amount_usd"] == "40.00" and body["reported_cost_usd"] is None
    assert body["late"] is False
    assert [a["ref"] for a in body["allocations"]] == [budget.id]
    assert body["allocations"][0]["amount_usd"] == "40.00"


def test_commit_charges_actual_and_releases_the_rest(client_a, tenant, budget):
    rid = _reserve(tenant)
    response = client_a.post(
        f"/api/v1/reservations/{rid}/commit",
        {"actual_cost_usd": "31.50", "usage": {"gpu_hours": 3}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "committed" and body["reported_cost_usd"] == "31.50"
    assert body["usage"] == {"gpu_hours": 3} and body["late"] is False
    assert body["overage_usd"] == "0.00"
    assert body["allocations"][0]["charged_usd"] == "31.50"
    period = _period(budget)
    assert (period.reserved_micros, period.spent_micros) == (0, 31_500_000)
    assert SpendRollup.objects.get().spent_micros == 31_500_000
    assert OutboxEvent.objects.filter(event_type="reservation.committed").count() == 1
    assert LedgerEntry.objects.filter(kind="reservation.committed").count() == 1
    assert verify_ledger(tenant_id=tenant.id).ok


def test_commit_returns_unused_credit(client_a, tenant, budget):
    grant = factories.make_grant(tenant, "50.00")
    rid = _reserve(tenant, micros=120_000_000)  # 100 from the budget, 20 from credits
    grant.refresh_from_db()
    assert grant.remaining_micros == 30_000_000
    client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "105.00"}, format="json"
    )
    grant.refresh_from_db()
    assert grant.remaining_micros == 45_000_000  # only 5 of the 20 drawn were used
    assert _period(budget).spent_micros == 100_000_000


def test_release_gives_everything_back(client_a, tenant, budget):
    rid = _reserve(tenant)
    response = client_a.post(f"/api/v1/reservations/{rid}/release")
    assert response.status_code == 200 and response.json()["state"] == "released"
    period = _period(budget)
    assert (period.reserved_micros, period.spent_micros) == (0, 0)


def test_resolve_once(client_a, tenant, budget):
    rid = _reserve(tenant)
    assert client_a.post(f"/api/v1/reservations/{rid}/release").status_code == 200
    for path, body in (
        ("release", None),
        ("commit", {"actual_cost_usd": "1.00"}),
    ):
        response = client_a.post(f"/api/v1/reservations/{rid}/{path}", body, format="json")
        problem = assert_problem(response, 409, "RESERVATION_RESOLVED")
        assert problem["state"] == "released"
    assert _period(budget).reserved_micros == 0


def test_commit_twice_is_409(client_a, tenant, budget):
    rid = _reserve(tenant)
    ok = client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "1.00"}, format="json"
    )
    assert ok.status_code == 200
    again = client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "1.00"}, format="json"
    )
    assert_problem(again, 409, "RESERVATION_RESOLVED")
    assert _period(budget).spent_micros == 1_000_000


def test_extend_pushes_expiry(client_a, tenant, budget):
    rid = _reserve(tenant)
    before = Reservation.objects.get(pk=rid).expires_at
    response = client_a.post(
        f"/api/v1/reservations/{rid}/extend", {"ttl_seconds": 3600}, format="json"
    )
    assert response.status_code == 200, response.content
    after = Reservation.objects.get(pk=rid).expires_at
    assert after > before
    assert LedgerEntry.objects.filter(kind="reservation.extended").count() == 1


@pytest.mark.parametrize("ttl", [0, -5, "abc", 10**9])
def test_extend_ttl_out_of_bounds_is_400(client_a, tenant, budget, ttl):
    rid = _reserve(tenant)
    response = client_a.post(
        f"/api/v1/reservations/{rid}/extend", {"ttl_seconds": ttl}, format="json"
    )
    problem = assert_problem(response, 400)
    assert "ttl_seconds" in {e["field"] for e in problem["errors"]}


def test_extend_after_expiry_is_409(client_a, tenant, budget):
    rid = _reserve(tenant)
    Reservation.objects.filter(pk=rid).update(expires_at=db_now() - timedelta(seconds=1))
    # Overdue but not yet swept: still refused.
    response = client_a.post(
        f"/api/v1/reservations/{rid}/extend", {"ttl_seconds": 60}, format="json"
    )
    assert_problem(response, 409, "RESERVATION_EXPIRED")
    reservations_expire()
    response = client_a.post(
        f"/api/v1/reservations/{rid}/extend", {"ttl_seconds": 60}, format="json"
    )
    assert_problem(response, 409, "RESERVATION_EXPIRED")


def test_extend_a_released_reservation_is_409_resolved(client_a, tenant, budget):
    rid = _reserve(tenant)
    client_a.post(f"/api/v1/reservations/{rid}/release")
    response = client_a.post(
        f"/api/v1/reservations/{rid}/extend", {"ttl_seconds": 60}, format="json"
    )
    assert_problem(response, 409, "RESERVATION_RESOLVED")


def test_late_commit_after_expiry_is_recorded_not_refused(client_a, tenant, budget):
    rid = _reserve(tenant, micros=90_000_000)
    _expire_now(rid)
    assert _period(budget).reserved_micros == 0
    # Meanwhile someone else uses the budget.
    other = _reserve(tenant, micros=60_000_000)
    before = _metric("reservations_late_commits_total")
    response = client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "80.00"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "committed" and body["late"] is True
    period = _period(budget)
    # Charged even though spent + reserved now exceeds the limit: real spend is never lost.
    assert period.spent_micros == 80_000_000 and period.reserved_micros == 60_000_000
    assert period.spent_micros + period.reserved_micros > period.limit_micros
    assert LedgerEntry.objects.filter(kind="late_commit").count() == 1
    assert _metric("reservations_late_commits_total") == before + 1
    assert verify_ledger(tenant_id=tenant.id).ok
    assert Reservation.objects.get(pk=other).state == "pending"


def test_late_commit_is_still_resolve_once(client_a, tenant, budget):
    rid = _reserve(tenant)
    _expire_now(rid)
    path = f"/api/v1/reservations/{rid}/commit"
    assert client_a.post(path, {"actual_cost_usd": "5.00"}, format="json").status_code == 200
    assert_problem(client_a.post(path, {"actual_cost_usd": "5.00"}, format="json"), 409)
    assert _period(budget).spent_micros == 5_000_000


def test_release_after_expiry_is_409(client_a, tenant, budget):
    rid = _reserve(tenant)
    _expire_now(rid)
    assert_problem(
        client_a.post(f"/api/v1/reservations/{rid}/release"), 409, "RESERVATION_RESOLVED"
    )


def test_over_commit_records_an_invariant_violation(client_a, tenant, budget):
    rid = _reserve(tenant, micros=40_000_000)
    before = _metric("budget_invariant_violations_total")
    body = client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "55.00"}, format="json"
    ).json()
    assert body["state"] == "committed" and body["overage_usd"] == "15.00"
    assert _period(budget).spent_micros == 55_000_000
    violation = LedgerEntry.objects.get(kind="invariant_violation")
    assert violation.payload["kind"] == "over_commit"
    assert violation.payload["actual"] == 55_000_000 and violation.payload["reserved"] == 40_000_000
    assert _metric("budget_invariant_violations_total") == before + 1
    assert verify_ledger(tenant_id=tenant.id).ok


@pytest.mark.parametrize("value", ["-1.00", "abc", "1.0000001", 3, None, ""])
def test_commit_rejects_bad_money(client_a, tenant, budget, value):
    rid = _reserve(tenant)
    response = client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": value}, format="json"
    )
    problem = assert_problem(response, 400, "VALIDATION_FAILED")
    assert "actual_cost_usd" in {e["field"] for e in problem["errors"]}
    assert Reservation.objects.get(pk=rid).state == "pending"


def test_commit_unknown_field_is_400(client_a, tenant, budget):
    rid = _reserve(tenant)
    response = client_a.post(
        f"/api/v1/reservations/{rid}/commit",
        {"actual_cost_usd": "1.00", "bonus": 1},
        format="json",
    )
    assert_problem(response, 400, "VALIDATION_FAILED")


def test_unknown_reservation_is_404(client_a, tenant):
    assert_problem(client_a.get("/api/v1/reservations/res_doesnotexist"), 404, "NOT_FOUND")


def test_reconciliation_invoices_and_posts_the_difference(client_a, tenant, budget):
    first = _reserve(tenant, micros=30_000_000)
    second = _reserve(tenant, micros=20_000_000)
    pending = _reserve(tenant, micros=1_000_000)
    for rid, cost in ((first, "30.00"), (second, "20.00")):
        client_a.post(
            f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": cost}, format="json"
        )
    response = client_a.post(
        "/api/v1/reconciliations",
        {
            "items": [
                {"reservation_id": first, "invoiced_cost_usd": "32.00", "external_ref": "inv-1"},
                {"reservation_id": second, "invoiced_cost_usd": "18.50"},
                {"reservation_id": pending, "invoiced_cost_usd": "1.00"},
                {"reservation_id": "res_nope", "invoiced_cost_usd": "1.00"},
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["invoiced"] == 2 and body["failed"] == 2
    by_id = {r["reservation_id"]: r for r in body["results"]}
    assert by_id[first]["status"] == "invoiced" and by_id[first]["adjustment_usd"] == "2.00"
    assert by_id[second]["adjustment_usd"] == "-1.50"
    assert by_id[pending]["code"] == "RESERVATION_NOT_COMMITTED"
    assert by_id["res_nope"]["code"] == "NOT_FOUND"
    assert _period(budget).spent_micros == 50_500_000
    detail = client_a.get(f"/api/v1/reservations/{first}").json()
    assert detail["state"] == "invoiced" and detail["invoiced_cost_usd"] == "32.00"
    assert detail["external_ref"] == "inv-1"
    again = client_a.post(
        "/api/v1/reconciliations",
        {"items": [{"reservation_id": first, "invoiced_cost_usd": "40.00"}]},
        format="json",
    ).json()
    assert again["results"][0]["code"] == "RESERVATION_RESOLVED"
    assert _period(budget).spent_micros == 50_500_000
    assert verify_ledger(tenant_id=tenant.id).ok


def test_reconciliation_corrects_the_day_the_spend_was_reported(client_a, tenant, budget):
    """A bill arriving later adjusts the rollup of the commit's day: never negative, never
    moved into the month the invoice happened to arrive in."""
    from enforcement.models import SpendRollup

    rid = _reserve(tenant, micros=30_000_000)
    client_a.post(f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "30.00"}, format="json")
    earlier = db_now() - timedelta(days=40)
    Reservation.objects.filter(pk=rid).update(resolved_at=earlier)
    SpendRollup.objects.filter(tenant=tenant).update(day=earlier.date())  # as if reported then
    client_a.post(
        "/api/v1/reconciliations",
        {"items": [{"reservation_id": rid, "invoiced_cost_usd": "0.00"}]},  # fully refunded
        format="json",
    )
    days = dict(SpendRollup.objects.filter(tenant=tenant).values_list("day", "spent_micros"))
    assert days == {earlier.date(): 0}


def test_reconciliation_cannot_touch_another_tenants_reservation(
    client_a, client_b, tenant, budget
):
    rid = _reserve(tenant)
    client_a.post(f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "1.00"}, format="json")
    body = client_b.post(
        "/api/v1/reconciliations",
        {"items": [{"reservation_id": rid, "invoiced_cost_usd": "9.00"}]},
        format="json",
    ).json()
    assert body["results"][0]["code"] == "NOT_FOUND"
    assert Reservation.objects.get(pk=rid).state == "committed"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"items": []},
        {"items": [{"reservation_id": "x"}]},
        {"items": [{"reservation_id": "x", "invoiced_cost_usd": "-1"}]},
    ],
)
def test_reconciliation_bad_input_is_400(client_a, payload):
    assert_problem(client_a.post("/api/v1/reconciliations", payload, format="json"), 400)


def test_credit_commit_after_void_still_settles(client_a, tenant, budget):
    """Voiding a grant stops new draws; a reservation already holding it still settles."""
    grant = factories.make_grant(tenant, "50.00")
    rid = _reserve(tenant, micros=130_000_000)
    client_a.post(f"/api/v1/credit-grants/{grant.id}/void")
    client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "110.00"}, format="json"
    )
    grant.refresh_from_db()
    assert grant.remaining_micros == 40_000_000
    assert CreditGrant.objects.get(pk=grant.pk).voided_at is not None


@pytest.mark.parametrize("lapse", ["voided", "expired"])
def test_late_commit_never_charges_a_grant_that_lapsed(client_a, tenant, budget, lapse):
    """After the hold expired, a voided or expired grant takes nothing: the budgets carry it."""
    grant = factories.make_grant(tenant, "50.00")
    rid = _reserve(tenant, micros=130_000_000)  # 100 from the budget, 30 from the grant
    _expire_now(rid)
    grant.refresh_from_db()
    assert grant.remaining_micros == 50_000_000  # the expiry gave the 30 back
    if lapse == "voided":
        assert client_a.post(f"/api/v1/credit-grants/{grant.id}/void").status_code == 200
    else:
        now = db_now()
        CreditGrant.objects.filter(pk=grant.pk).update(
            effective_at=now - timedelta(hours=1), expires_at=now - timedelta(seconds=1)
        )
    response = client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "110.00"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["late"] is True
    grant.refresh_from_db()
    assert grant.remaining_micros == 50_000_000
    assert _period(budget).spent_micros == 110_000_000  # 100 + the 10 the grant would have taken
    assert verify_ledger(tenant_id=tenant.id).ok


def test_late_commit_still_charges_a_live_grant(client_a, tenant, budget):
    grant = factories.make_grant(tenant, "50.00")
    rid = _reserve(tenant, micros=130_000_000)
    _expire_now(rid)
    client_a.post(
        f"/api/v1/reservations/{rid}/commit", {"actual_cost_usd": "110.00"}, format="json"
    )
    grant.refresh_from_db()
    assert grant.remaining_micros == 40_000_000
    assert _period(budget).spent_micros == 100_000_000


def _pending(tenant):
    if not tenant.projects.filter(slug="iso").exists():
        factories.make_budget(tenant, "1000.00", project=factories.make_project(tenant, "iso"))
    rid = _reserve(tenant, micros=1_000_000, project="iso", environment="dev")
    return Reservation.objects.get(pk=rid)


def _committed(tenant):
    reservation = _pending(tenant)
    from enforcement.services.reservations import reservation_commit

    reservation, _ = reservation_commit(reservation_id=reservation.id, actual_micros=1_000_000)
    return reservation


class TestReservationTenantIsolation(TenantIsolationContract):
    isolation_cases = [
        IsolationCase(
            name="reservation-detail",
            method="GET",
            make=_pending,
            path=lambda obj: f"/api/v1/reservations/{obj.pk}",
        ),
        IsolationCase(
            name="reservation-commit",
            method="POST",
            make=_pending,
            path=lambda obj: f"/api/v1/reservations/{obj.pk}/commit",
            body={"actual_cost_usd": "0.50"},
        ),
        IsolationCase(
            name="reservation-release",
            method="POST",
            make=_pending,
            path=lambda obj: f"/api/v1/reservations/{obj.pk}/release",
        ),
        IsolationCase(
            name="reservation-extend",
            method="POST",
            make=_pending,
            path=lambda obj: f"/api/v1/reservations/{obj.pk}/extend",
            body={"ttl_seconds": 60},
        ),
    ]

    def test_other_tenant_cannot_resolve(self, isolation_case, tenant, client_b):
        obj = isolation_case.make(tenant)
        self._call(client_b, isolation_case, obj)
        obj.refresh_from_db()
        assert obj.state == "pending"


def test_commit_usage_with_nul_is_400(client_a, tenant, budget):
    rid = _reserve(tenant)
    response = client_a.post(
        f"/api/v1/reservations/{rid}/commit",
        {"actual_cost_usd": "1.00", "usage": {"note": "a\u0000"}},
        format="json",
    )
    problem = assert_problem(response, 400, "VALIDATION_FAILED")
    assert "usage" in {e["field"] for e in problem["errors"]}
    assert Reservation.objects.get(pk=rid).state == "pending"
