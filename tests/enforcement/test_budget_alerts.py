"""Budget alerts: thresholds once per period, forecast alerts for entitled tenants, webhooks
through the outbox, the commit hint, the sweep, badges and the API."""

from __future__ import annotations

import uuid

import pytest

from billing.services.plans import tenant_plan_set
from controlplane.audit.models import OutboxEvent
from enforcement.models import BudgetAlert, BudgetPeriod
from enforcement.selectors import budget_alert_badges
from enforcement.services.alerts import budget_alerts_evaluate, crossed
from enforcement.services.budgets import budget_update
from tests import factories
from tests.api_contracts import assert_problem

pytestmark = pytest.mark.django_db


def spend(client, usd: str, project="payments"):
    decision = client.post(
        "/api/v1/gate/decisions",
        {"project": project, "environment": "prod", "estimated_cost_usd": usd},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    ).json()
    response = client.post(
        f"/api/v1/reservations/{decision['reservation']['id']}/commit",
        {"actual_cost_usd": usd},
        format="json",
    )
    assert response.status_code == 200, response.content


@pytest.fixture
def budget(tenant):
    project = factories.make_project(tenant, "payments")
    return factories.make_budget(tenant, "100.00", project=project)


def threshold_events():
    return [
        e.payload["threshold_percent"]
        for e in OutboxEvent.objects.filter(event_type="budget.threshold_crossed").order_by("id")
    ]


def test_default_thresholds_fire_once_each_per_period(client_a, budget):
    spend(client_a, "49.00")
    assert budget_alerts_evaluate() == 0
    spend(client_a, "32.00")  # 81 %
    assert budget_alerts_evaluate() == 2  # 50 and 80
    assert budget_alerts_evaluate() == 0  # never twice
    spend(client_a, "19.00")  # 100 %
    assert budget_alerts_evaluate() == 2  # 90 and 100
    assert sorted(threshold_events()) == [50, 80, 90, 100]
    event = OutboxEvent.objects.filter(event_type="budget.threshold_crossed").last()
    assert event.payload["budget_id"] == budget.id and event.payload["limit_usd"] == "100.00"


def test_a_commit_crossing_a_threshold_asks_for_a_check_after_commit(
    client_a, budget, django_capture_on_commit_callbacks
):
    spend(client_a, "10.00")
    with django_capture_on_commit_callbacks() as callbacks:
        spend(client_a, "45.00")  # 10 -> 55 %: crosses 50
    assert len(callbacks) >= 1
    with django_capture_on_commit_callbacks() as quiet:
        spend(client_a, "1.00")  # 55 -> 56 %: crosses nothing
    assert not any("budget" in repr(c) for c in quiet)


def test_custom_thresholds(client_a, budget):
    budget_update(budget=budget, alert_thresholds=[25, 150])
    spend(client_a, "30.00")
    budget_alerts_evaluate()
    assert threshold_events() == [25]


def test_crossed_is_exact_at_the_boundary():
    assert crossed(100, 49, 50, [50]) == [50]
    assert crossed(100, 50, 51, [50]) == []
    assert crossed(0, 0, 10, [50]) == []


def test_forecast_alert_needs_the_entitlement_and_fires_once(tenant, client_a, budget):
    assert_problem(
        client_a.patch(f"/api/v1/budgets/{budget.id}", {"forecast_alert": True}, format="json"),
        403,
        "FEATURE_NOT_ENTITLED",
    )
    tenant_plan_set(tenant=tenant, plan="enterprise")
    response = client_a.patch(
        f"/api/v1/budgets/{budget.id}", {"forecast_alert": True}, format="json"
    )
    assert response.status_code == 200 and response.json()["forecast_alert"] is True
    spend(client_a, "1.00")
    period = BudgetPeriod.objects.get(budget=budget)
    # Spend so far plus its daily rate over the days left runs past the limit (on any day of
    # the month, the last one included: spend alone is already above the limit).
    BudgetPeriod.objects.filter(pk=period.pk).update(spent_micros=100_500_000)
    budget_alerts_evaluate()
    budget_alerts_evaluate()
    alerts = BudgetAlert.objects.filter(kind="forecast")
    assert alerts.count() == 1 and alerts.get().forecast_micros > 100_000_000
    assert OutboxEvent.objects.filter(event_type="budget.forecast_exceeds_limit").count() == 1


def test_a_downgraded_tenant_gets_no_forecast_alerts(tenant, client_a, budget):
    tenant_plan_set(tenant=tenant, plan="enterprise")
    budget_update(budget=budget, forecast_alert=True)
    spend(client_a, "1.00")
    tenant_plan_set(tenant=tenant, plan="growth")
    assert BudgetPeriod.objects.filter(budget=budget).update(spent_micros=100_500_000) == 1
    budget_alerts_evaluate()
    assert not BudgetAlert.objects.filter(kind="forecast").exists()
    assert BudgetAlert.objects.filter(kind="threshold").count() == 4  # those come with any plan


def test_badges_and_api_list_what_fired(tenant, client_a, budget):
    spend(client_a, "91.00")
    budget_alerts_evaluate()
    assert budget_alert_badges(tenant=tenant) == [
        {
            "budget_id": budget.id,
            "budget_name": str(budget),
            "threshold_percent": 90,
            "forecast_over_limit": False,
            "fired_at": BudgetAlert.objects.order_by("-fired_at").first().fired_at,
        }
    ]
    listed = client_a.get("/api/v1/budget-alerts?current=true").json()["results"]
    assert sorted(a["threshold_percent"] for a in listed) == [50, 80, 90]
    assert {a["kind"] for a in listed} == {"threshold"}


def test_other_tenants_do_not_see_the_alerts(client_a, client_b, budget):
    spend(client_a, "60.00")
    budget_alerts_evaluate()
    assert client_b.get("/api/v1/budget-alerts").json()["results"] == []


def test_alert_settings_are_validated(client_a, budget):
    response = client_a.patch(
        f"/api/v1/budgets/{budget.id}", {"alert_thresholds": [0, 2000]}, format="json"
    )
    assert_problem(response, 400, "VALIDATION_FAILED")
