"""No N+1: every page costs the same number of queries with 1 item per list or many."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from controlplane.identity.services.groups import scim_group_create
from controlplane.identity.services.tokens import scim_token_issue
from controlplane.identity.services.users import scim_user_create
from controlplane.tenancy.services import api_key_issue
from enforcement.models import ReconciliationImport, ReconciliationLine
from tests import factories
from tests.dashboard.conftest import PAGES, POLICY, gate, logged_in
from tests.enforcement.helpers import publish_policy

pytestmark = pytest.mark.django_db


def add_billing_items(tenant, index: int, budget) -> None:
    """An alert on the budget's current period, a credit grant, a bill import with a miss."""
    factories.make_budget_alert(budget, percent=50)
    factories.make_grant(tenant, "10.00")
    run = ReconciliationImport.objects.create(
        tenant=tenant, format="focus_csv", filename=f"bill{index}.csv", sha256=f"{index:064x}"
    )
    ReconciliationLine.objects.create(
        import_run=run, line_numbers=[2], outcome="unmatched", amount_micros=1_000_000
    )


def add_scim_items(tenant, index: int, owner) -> None:
    """A SCIM token, a provisioned person in a SCIM group (ledger entries come with them)."""
    scim_token_issue(tenant=tenant, name=f"idp{index}", created_by=owner)
    person = scim_user_create(tenant=tenant, doc={"userName": f"person{index}@example.com"})
    scim_group_create(
        tenant=tenant, doc={"displayName": f"group{index}", "members": [{"value": person.id}]}
    )


def add_items(world, start: int, count: int) -> None:
    """``count`` more of everything a page lists: budgets, decisions, approvals, versions, keys,
    alerts, grants, bill imports, SCIM tokens, people and groups."""
    tenant = world["tenant"]
    for index in range(start, start + count):
        project = factories.make_project(tenant, f"p{index}")
        budget = factories.make_budget(tenant, "500.00", project=project)
        factories.make_budget(tenant, "300.00", project=project, environment="prod")
        add_billing_items(tenant, index, budget)
        add_scim_items(tenant, index, world["owner"])
        gate(tenant, "20.00", project=project.slug)  # ALLOW
        gate(tenant, "150.00", project=project.slug)  # REQUIRE_APPROVAL, owners decide
        publish_policy(
            tenant,
            {"version": 1, "description": f"v{index}", "approval": {"threshold_usd": "100"}},
        )
        api_key_issue(
            tenant=tenant, name=f"k{index}", scopes=["approvals:read"], user=world["owner"]
        )


def queries_per_page(client) -> dict[str, int]:
    counts = {}
    for page in PAGES:
        client.get(page)  # warm: session and per-process caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(page)
        assert response.status_code == 200, page
        counts[page] = len(queries)
    return counts


def test_queries_do_not_grow_with_the_data(world, settings):
    settings.BYOK_REDIS_URL = ""  # the BYOK page reads Redis, not the database, for breakers
    client = logged_in(world["owner"])
    add_items(world, 0, 1)
    few = queries_per_page(client)
    add_items(world, 1, 7)
    many = queries_per_page(client)
    assert many == few
    assert max(few.values()) <= 16, few  # and the fixed cost is small


def queries_of(client, url: str) -> int:
    client.get(url)  # warm
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


def test_detail_pages_cost_the_same_with_more_inside(world, settings):
    """Decision, policy and simulation pages: a small object and a big one (more allocations,
    more rules, more changed decisions) cost the same queries."""
    from datetime import timedelta

    from controlplane.core.clock import db_now
    from enforcement.services.policies import compiled_for_row
    from enforcement.services.simulation_jobs import simulation_job_create, simulation_job_run

    tenant = world["tenant"]
    client = logged_in(world["owner"])

    # Decisions: one covering budget vs five, with a credit draw.
    factories.make_project(tenant, "solo")
    small = gate(tenant, "20.00", project="solo")["decision_id"]
    payments = tenant.projects.get(slug="payments")
    factories.make_budget(tenant, "5000.00", project=payments, period="daily")
    factories.make_budget(tenant, "900.00", project=payments, environment="prod", period="daily")
    big = gate(tenant, "20.00", project="payments")["decision_id"]
    assert queries_of(client, f"/dashboard/decisions/{big}/") == queries_of(
        client, f"/dashboard/decisions/{small}/"
    )

    # Policies: a version with one rule vs one with many, each shown with its diff.
    publish_policy(tenant, {"version": 1, "description": "one rule", "rules": []})
    few_rules = tenant.policies.order_by("-version").first().version
    many = [
        {"id": f"r{i}", "when": f"request.amount_usd > {i}.0", "then": "deny"} for i in range(30)
    ]
    publish_policy(tenant, {"version": 1, "description": "many rules", "rules": many})
    many_rules = tenant.policies.order_by("-version").first().version
    assert queries_of(client, f"/dashboard/policies/{many_rules}/") == queries_of(
        client, f"/dashboard/policies/{few_rules}/"
    )

    # Simulations: a report with one changed decision vs one with many (decisions made under
    # the permissive policy, replayed against the deny-everything version).
    deny_all = tenant.policies.get(version=many_rules)
    publish_policy(tenant, POLICY)

    def report(count: int) -> str:
        since = db_now() - timedelta(days=1)
        for _ in range(count):
            gate(tenant, "5.00", project="solo")
        job = simulation_job_create(
            tenant=tenant,
            policy=compiled_for_row(deny_all),
            since=since,
            until=db_now() + timedelta(days=1),
        )
        assert simulation_job_run(job_id=job.id)
        job.refresh_from_db()
        assert len(job.result["changed"]) >= count, job.result
        return f"/dashboard/policies/simulations/{job.id}/"

    one = report(1)
    several = report(8)
    assert queries_of(client, several) == queries_of(client, one)
