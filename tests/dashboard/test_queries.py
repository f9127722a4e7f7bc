"""No N+1: every page costs the same number of queries with 1 item per list or many."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from controlplane.tenancy.services import api_key_issue
from tests import factories
from tests.dashboard.conftest import PAGES, gate, logged_in
from tests.enforcement.helpers import publish_policy

pytestmark = pytest.mark.django_db


def add_items(world, start: int, count: int) -> None:
    """``count`` more of everything a page lists: budgets, decisions, approvals, versions, keys."""
    tenant = world["tenant"]
    for index in range(start, start + count):
        project = factories.make_project(tenant, f"p{index}")
        factories.make_budget(tenant, "500.00", project=project)
        factories.make_budget(tenant, "300.00", project=project, environment="prod")
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
