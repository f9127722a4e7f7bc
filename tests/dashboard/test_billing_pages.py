"""What billing adds to the dashboard: alert badges on the overview, the alerts page, credit
grants in burn order, bill imports with the lines that did not match."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.services.plans import tenant_plan_set
from controlplane.core.clock import db_now
from controlplane.core.money import parse_usd
from enforcement.models import BudgetPeriod, ReconciliationImport, ReconciliationLine
from enforcement.services.alerts import budget_alerts_evaluate
from enforcement.services.reservations import reservation_commit
from tests import factories
from tests.dashboard.conftest import gate

pytestmark = pytest.mark.django_db


@pytest.fixture
def search_budget(world):
    """A 100 USD budget on the project search, 90 % spent (thresholds 50, 80, 90 fired)."""
    tenant = world["tenant"]
    project = factories.make_project(tenant, "search")
    budget = factories.make_budget(tenant, "100.00", project=project)
    answer = gate(tenant, "90.00", project="search", environment="dev")
    reservation_commit(reservation_id=answer["reservation"]["id"], actual_micros=parse_usd("90"))
    budget_alerts_evaluate()
    return budget


def test_overview_badges_show_the_highest_threshold_reached(world, owner_client, search_budget):
    page = owner_client.get("/dashboard/").content.decode()
    assert "alert: 90 % reached" in page and "alert: 80 % reached" not in page
    assert 'href="/dashboard/alerts/"' in page
    assert page.count("alert: ") == 1  # only the budget that fired has a badge


def test_forecast_badges_follow_the_plan(world, owner_client, search_budget):
    factories.make_budget_alert(search_budget, kind="forecast", forecast_usd="180")
    page = owner_client.get("/dashboard/").content.decode()
    assert "forecast over limit" not in page  # Pro has no forecast alerts
    alerts = owner_client.get("/dashboard/alerts/").content.decode()
    assert "forecast over limit" not in alerts and "90 % reached" in alerts
    tenant_plan_set(tenant=world["tenant"], plan="enterprise")
    assert "alert: forecast over limit" in owner_client.get("/dashboard/").content.decode()
    only = owner_client.get("/dashboard/alerts/?kind=forecast").content.decode()
    assert "forecast over limit" in only and "90 % reached" not in only


def test_alerts_page_lists_this_period_and_on_request_every_period(
    world, owner_client, search_budget
):
    listed = owner_client.get("/dashboard/alerts/").content.decode()
    for percent in (50, 80, 90):
        assert f"{percent} % reached" in listed
    assert "100 % reached" not in listed
    BudgetPeriod.objects.filter(budget=search_budget).update(
        period_start=db_now().date() - timedelta(days=70),
        period_end=db_now().date() - timedelta(days=40),
    )
    assert "No alerts this period" in owner_client.get("/dashboard/alerts/").content.decode()
    assert "90 % reached" in owner_client.get("/dashboard/alerts/?all=1").content.decode()


def test_credits_are_listed_in_burn_order_with_their_state(world, owner_client):
    tenant = world["tenant"]  # the world has a 250 USD reserved grant (priority 100)
    emergency = factories.make_grant(tenant, "75.00", pool="emergency", priority=1)
    first = factories.make_grant(tenant, "20.00", priority=5)
    soon = factories.make_grant(tenant, "30.00", expires_at=db_now() + timedelta(days=3))
    page = owner_client.get("/dashboard/credits/").content.decode()
    order = [page.index(grant.id) for grant in (first, soon, emergency)]
    assert order == sorted(order)
    assert "75.00 USD" in page and "available" in page


def test_reconciliation_lists_imports_and_the_lines_that_did_not_match(world, owner_client):
    run = ReconciliationImport.objects.create(
        tenant=world["tenant"],
        format="focus_csv",
        filename="aws-2026-11.csv",
        sha256="a" * 64,
        lines_total=3,
        lines_matched=2,
        lines_unmatched=1,
        unmatched_micros=parse_usd("12.34"),
    )
    ReconciliationLine.objects.create(
        import_run=run,
        line_numbers=[4],
        outcome="unmatched",
        reason="no committed reservation carries this reference",
        external_ref="i-0abc",
        amount_micros=parse_usd("12.34"),
    )
    page = owner_client.get("/dashboard/reconciliation/").content.decode()
    assert "aws-2026-11.csv" in page and "12.34 USD" in page
    assert "no committed reservation carries this reference" in page and "i-0abc" in page
