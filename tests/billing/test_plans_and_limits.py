"""Plans, the tenant's view of them, and plan limits on what a tenant creates."""

from __future__ import annotations

import itertools

import pytest

from billing import catalog
from billing.models import Plan
from billing.services.plans import plan_upsert, plans_sync, tenant_plan_set
from controlplane.core.errors import TollgateError
from controlplane.identity.models import ApproverGroup
from tests import factories
from tests.api_contracts import assert_problem
from tests.billing.conftest import key_client

pytestmark = pytest.mark.django_db


def test_catalog_plans_are_in_the_database_as_defined():
    plans_sync()
    for spec in catalog.PLANS.values():
        row = Plan.objects.get(code=spec.code)
        assert (row.name, row.rank, sorted(row.features), row.limits) == (
            spec.name,
            spec.rank,
            sorted(spec.entitlements),
            spec.limits,
        )


def test_higher_plans_include_lower_ones_and_no_plan_has_everything_by_flag():
    ranked = sorted(catalog.PLANS.values(), key=lambda p: p.rank)
    for lower, higher in itertools.pairwise(ranked):
        assert set(lower.entitlements) <= set(higher.entitlements)
        for key in catalog.LIMIT_KEYS:
            lo, hi = lower.limits[key], higher.limits[key]
            assert hi is None or (lo is not None and hi >= lo)
    with pytest.raises(ValueError, match="unknown entitlement"):
        plan_upsert(code="custom", name="Custom", features=["everything"])


def test_new_tenants_start_on_the_default_plan(settings):
    from controlplane.tenancy.services import tenant_create

    tenant = tenant_create(slug="fresh", name="Fresh")
    assert tenant.plan.plan_id == settings.BILLING_DEFAULT_PLAN == "free"


def test_tenant_endpoint_shows_plan_entitlements_and_subscription(tenant):
    tenant_plan_set(tenant=tenant, plan="pro")
    body = key_client(tenant).get("/api/v1/tenant").json()
    assert body["plan"] == {"code": "pro", "name": "Pro", "limits": catalog.PLANS["pro"].limits}
    assert body["entitlements"] == [
        {"key": "byok", "name": "Bring your own provider keys", "maturity": "GA", "enabled": True},
        {"key": "credit_grants", "name": "Credit grants", "maturity": "GA", "enabled": True},
        {
            "key": "invoice_reconciliation",
            "name": "Invoice reconciliation",
            "maturity": "Beta",
            "enabled": True,
        },
        {"key": "llm_gateway", "name": "LLM spend gateway", "maturity": "Beta", "enabled": True},
        {
            "key": "forecast_alerts",
            "name": "Forecast alerts",
            "maturity": "Preview",
            "enabled": False,
        },
    ]
    assert body["subscription"] is None


def test_openapi_documents_plan_and_entitlements():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    tenant = schema["components"]["schemas"]["TenantDetail"]["properties"]
    assert {"plan", "entitlements", "subscription"} <= set(tenant)
    entitlement = schema["components"]["schemas"]["Entitlement"]["properties"]
    assert set(entitlement) == {"key", "name", "maturity", "enabled"}
    assert "/api/v1/reconciliations/imports" in schema["paths"]
    assert "/api/v1/budget-alerts" in schema["paths"]


def test_project_limit_is_402_with_the_plan_to_buy(tenant):
    tenant_plan_set(tenant=tenant, plan="free")  # 1 project
    client = key_client(tenant)
    assert client.post("/api/v1/projects", {"slug": "one"}, format="json").status_code == 201
    body = assert_problem(
        client.post("/api/v1/projects", {"slug": "two"}, format="json"), 402, "PAYMENT_REQUIRED"
    )
    assert body["reason"] == "plan_limit" and body["limit"] == "projects"
    assert body["allowed"] == 1 and body["upgrade_to"] == "starter"
    assert "Starter" in body["remediation"]


def test_api_key_and_budget_limits(tenant):
    tenant_plan_set(tenant=tenant, plan="free")  # 2 keys, 3 budgets
    client = key_client(tenant)  # key 1
    factories.make_api_key(tenant)  # key 2
    response = client.post(
        "/api/v1/api-keys", {"name": "k3", "scopes": ["projects:read"]}, format="json"
    )
    assert assert_problem(response, 402, "PAYMENT_REQUIRED")["limit"] == "api_keys"
    project = factories.make_project(tenant, "payments")
    for env in ("", "prod", "dev"):
        factories.make_budget(tenant, "1.00", project=project, environment=env)
    with pytest.raises(TollgateError) as exc:
        factories.make_budget(tenant, "1.00")
    assert exc.value.status_code == 402 and exc.value.extra["limit"] == "budgets"


def test_revoked_keys_do_not_count(tenant):
    from controlplane.tenancy.services import api_key_revoke

    tenant_plan_set(tenant=tenant, plan="free")
    first, _ = factories.make_api_key(tenant)
    factories.make_api_key(tenant)
    api_key_revoke(api_key=first)
    factories.make_api_key(tenant)  # room again


@pytest.mark.usefixtures("provider_server")
def test_byok_provider_limit(tenant):
    from byok import services
    from tests.fakes.provider_server import ANTHROPIC_VALID_KEY, DEFAULT_VALID_KEY

    plan_upsert(code="one-byok", name="One BYOK", features=["byok"], limits={"byok_providers": 1})
    tenant_plan_set(tenant=tenant, plan="one-byok")
    services.credential_create(tenant=tenant, provider="openai", api_key=DEFAULT_VALID_KEY)
    with pytest.raises(TollgateError) as exc:
        services.credential_create(tenant=tenant, provider="anthropic", api_key=ANTHROPIC_VALID_KEY)
    assert exc.value.code == "PAYMENT_REQUIRED" and exc.value.extra["limit"] == "byok_providers"


def test_approver_limit_in_the_admin(tenant, admin_client):
    tenant_plan_set(tenant=tenant, plan="free")  # 1 approver
    users = [factories.make_member(tenant, f"u{i}") for i in range(2)]  # groups hold members
    ApproverGroup.objects.create(tenant=tenant, name="finops").members.add(users[0])
    response = admin_client.post(
        "/admin/identity/approvergroup/add/",
        {"tenant": tenant.pk, "name": "sre", "external_id": "", "members": [users[1].pk]},
    )
    assert response.status_code == 200 and b"PAYMENT_REQUIRED" in response.content
    assert not ApproverGroup.objects.filter(name="sre").exists()
    # The same person in a second group is still one approver.
    response = admin_client.post(
        "/admin/identity/approvergroup/add/",
        {"tenant": tenant.pk, "name": "sre", "external_id": "", "members": [users[0].pk]},
    )
    assert response.status_code == 302


def test_approver_limit_is_the_group_services_for_admin_and_demo_alike(tenant):
    from controlplane.identity.services.groups import approver_group_save

    tenant_plan_set(tenant=tenant, plan="free")  # 1 approver
    alice, bob = (factories.make_member(tenant, name) for name in ("alice", "bob"))
    group = approver_group_save(tenant=tenant, name="finops", members=[alice])
    with pytest.raises(TollgateError) as exc:
        approver_group_save(tenant=tenant, name="finops", members=[alice, bob], group=group)
    assert exc.value.code == "PAYMENT_REQUIRED" and exc.value.extra["limit"] == "approvers"
    assert exc.value.extra["upgrade_to"] == "starter"
    assert list(group.members.all()) == [alice]  # nothing half-written
    approver_group_save(tenant=tenant, name="finops", members=[bob], group=group)  # a swap fits
    approver_group_save(tenant=tenant, name="finops", members=[], group=group)  # leaving: always


def test_approver_limit_over_scim_is_a_scim_error(tenant):
    from controlplane.audit.models import LedgerEntry
    from tests.identity.scim_helpers import ERROR_SCHEMA, GROUP_SCHEMA, ScimClient, patch_op
    from tests.identity.scim_helpers import scim_token as issue_scim_token

    tenant_plan_set(tenant=tenant, plan="free")  # 1 approver
    idp = ScimClient(issue_scim_token(tenant))
    ids = [idp.post("/Users", {"userName": name}).json()["id"] for name in ("ann", "ben")]
    created = idp.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "finops", "members": [{"value": ids[0]}]},
    )
    assert created.status_code == 201, created.content
    group_id = created.json()["id"]

    refused = idp.patch(
        f"/Groups/{group_id}",
        patch_op({"op": "add", "path": "members", "value": [{"value": ids[1]}]}),
    )
    assert refused.status_code == 403 and refused["Content-Type"] == "application/scim+json"
    body = refused.json()
    assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == "403"
    assert body["detail"].startswith("PAYMENT_REQUIRED: Your Free plan allows 1 approvers")
    assert "Upgrade to the Starter plan" in body["detail"]
    assert set(body) == {"schemas", "status", "detail"}  # nothing RFC 7644 does not define
    members = idp.get(f"/Groups/{group_id}").json().get("members", [])
    assert [m["value"] for m in members] == [ids[0]]
    assert not LedgerEntry.objects.filter(kind="approver_group.updated").exists()

    second = idp.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "sre", "members": [{"value": ids[1]}]},
    )
    assert second.status_code == 403 and not ApproverGroup.objects.filter(name="sre").exists()
    # Removing members (offboarding) is never refused; then someone else may join.
    emptied = idp.patch(f"/Groups/{group_id}", patch_op({"op": "remove", "path": "members"}))
    assert emptied.status_code in (200, 204), emptied.content
    assert (
        idp.post(
            "/Groups",
            {"schemas": [GROUP_SCHEMA], "displayName": "sre", "members": [{"value": ids[1]}]},
        ).status_code
        == 201
    )
