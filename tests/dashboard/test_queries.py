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
from tests.dashboard.conftest import PAGES, gate, logged_in
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
