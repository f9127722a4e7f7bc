"""Tenant, project and API key endpoints, including the tenant isolation contract."""

from __future__ import annotations

import pytest

from tests import factories
from tests.api_contracts import IsolationCase, TenantIsolationContract, assert_problem

pytestmark = pytest.mark.django_db


def test_tenant_is_the_callers(client_a, client_b):
    assert client_a.get("/api/v1/tenant").json()["slug"] == "acme"
    assert client_b.get("/api/v1/tenant").json()["slug"] == "globex"


def test_create_and_list_projects(client_a, client_b):
    created = client_a.post(
        "/api/v1/projects", {"slug": "payments", "name": "Payments"}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["id"].startswith("prj_")
    listing = client_a.get("/api/v1/projects").json()
    assert [p["slug"] for p in listing["results"]] == ["payments"]
    assert listing["next"] is None
    assert client_b.get("/api/v1/projects").json()["results"] == []


def test_duplicate_project_slug_is_409(client_a):
    client_a.post("/api/v1/projects", {"slug": "payments"}, format="json")
    body = assert_problem(
        client_a.post("/api/v1/projects", {"slug": "payments"}, format="json"),
        409,
        "PROJECT_SLUG_TAKEN",
    )
    assert body["errors"][0]["field"] == "slug"


def test_same_project_slug_in_two_tenants_is_fine(client_a, client_b):
    assert client_a.post("/api/v1/projects", {"slug": "web"}, format="json").status_code == 201
    assert client_b.post("/api/v1/projects", {"slug": "web"}, format="json").status_code == 201


def test_project_list_paginates_with_a_cursor(client_a, tenant):
    for index in range(5):
        factories.make_project(tenant, f"p{index}")
    first = client_a.get("/api/v1/projects?limit=2").json()
    assert len(first["results"]) == 2 and first["next"]
    seen = [p["slug"] for p in first["results"]]
    url = first["next"]
    while url:
        page = client_a.get(url).json()
        seen += [p["slug"] for p in page["results"]]
        url = page["next"]
    assert sorted(seen) == [f"p{i}" for i in range(5)]
    assert_problem(client_a.get("/api/v1/projects?cursor=bogus"), 400, "VALIDATION_FAILED")
    assert_problem(client_a.get("/api/v1/projects?limit=0"), 400, "VALIDATION_FAILED")


def test_issue_a_project_bound_key(client_a, tenant):
    factories.make_project(tenant, "payments")
    response = client_a.post(
        "/api/v1/api-keys",
        {"name": "ci", "scopes": ["tenant:read"], "project": "payments", "environment": "prod"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["project"] == "payments" and body["environment"] == "prod"
    assert body["key"].startswith("tg_") and body["id"].startswith("key_")
    unknown = client_a.post(
        "/api/v1/api-keys",
        {"name": "ci", "scopes": ["tenant:read"], "project": "nope"},
        format="json",
    )
    assert_problem(unknown, 400, "UNKNOWN_PROJECT")


def test_key_validation_errors_name_fields(client_a):
    response = client_a.post(
        "/api/v1/api-keys", {"scopes": [], "expires_at": "2001-01-01T00:00:00Z"}, format="json"
    )
    body = assert_problem(response, 400, "VALIDATION_FAILED")
    assert {e["field"] for e in body["errors"]} == {"name", "scopes", "expires_at"}


class TestTenantIsolation(TenantIsolationContract):
    isolation_cases = [
        IsolationCase(
            name="project-detail",
            method="GET",
            make=lambda tenant: factories.make_project(tenant, "secret-project"),
            path=lambda obj: f"/api/v1/projects/{obj.pk}",
        ),
        IsolationCase(
            name="api-key-detail",
            method="GET",
            make=lambda tenant: factories.make_api_key(tenant, name="secret")[0],
            path=lambda obj: f"/api/v1/api-keys/{obj.pk}",
        ),
        IsolationCase(
            name="api-key-revoke",
            method="DELETE",
            make=lambda tenant: factories.make_api_key(tenant, name="secret")[0],
            path=lambda obj: f"/api/v1/api-keys/{obj.pk}",
            ok_status=204,
        ),
    ]

    def test_other_tenant_cannot_revoke(self, tenant, client_b):
        key, _ = factories.make_api_key(tenant, name="keep")
        client_b.delete(f"/api/v1/api-keys/{key.pk}")
        key.refresh_from_db()
        assert key.revoked_at is None
