"""Walk the entitlement catalog: every marketed entitlement is enforced at run time.

For each entitlement and each surface (API, admin, dashboard) every probe answers 403
``FEATURE_NOT_ENTITLED`` naming the plan that has it when the tenant's plan lacks the
entitlement (the dashboard as a page), and does not when the tenant is on that plan. The table
must cover the catalog exactly: adding an entitlement without its gates fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from billing import catalog
from billing.services.plans import tenant_plan_set
from byok.models import ProviderCredential
from enforcement.models import BudgetAlert, CreditGrant, LlmCall, ReconciliationImport
from tests import factories
from tests.fakes.provider_server import DEFAULT_VALID_KEY

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Probe:
    name: str
    call: Callable  # (client, obj) -> response


def _api(method: str, path: Callable[[object], str], body=None, content_type=None):
    def call(client, obj):
        url = path(obj)
        if content_type:
            return getattr(client, method)(url, data=body, content_type=content_type)
        if method in ("get", "delete"):
            return getattr(client, method)(url)
        return getattr(client, method)(url, body or {}, format="json")

    return call


def _admin_change(model):
    return lambda client, obj: client.get(
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/change/"
    )


def _page(path: Callable[[object], str], method: str = "get"):
    """A dashboard page as a signed-in owner of the tenant reaches it."""
    return lambda client, obj: getattr(client, method)(path(obj))


# --- the objects each entitlement's probes act on (made while the tenant had it) --------------


def _credential(tenant):
    from byok import services

    return services.credential_create(tenant=tenant, provider="openai", api_key=DEFAULT_VALID_KEY)


def _grant(tenant):
    return factories.make_grant(tenant, "10.00")


def _import(tenant):
    return ReconciliationImport.objects.create(
        tenant=tenant, format="focus_csv", filename="probe.csv", sha256="0" * 64
    )


def _forecast_alert(tenant):
    budget = factories.make_budget(tenant, "100.00")
    return factories.make_budget_alert(budget, kind="forecast", forecast_usd="200.00")


def _llm_call(tenant):
    """One LLM call reserved and committed through the gateway's adapter."""
    from billing.pricing import lookup
    from billing.services.prices import price_catalog_import
    from enforcement.llm.gateway import CallSpec, catalog_price, llm_commit, llm_reserve

    price_catalog_import(text=LLM_PRICES.read_bytes(), source="probe")
    lookup.clear()
    factories.make_budget(tenant, "10.00")
    price = catalog_price("gpt-4o")
    spec = CallSpec(
        format="openai",
        model="gpt-4o",
        input_tokens=10,
        max_output_tokens=10,
        idempotency_key="probe",
        project="payments",
        environment="dev",
    )
    reserved = llm_reserve(tenant=tenant, api_key=None, spec=spec, price=price)
    return llm_commit(
        reservation_id=reserved.reservation_id,
        frozen=reserved.frozen,
        usage={"prompt_tokens": 5, "completion_tokens": 5},
        surface="api",
        model="gpt-4o",
    )


LLM_PRICES = Path(__file__).resolve().parents[1] / "fixtures" / "llm" / "litellm_prices_subset.json"
FOCUS_HEADER = b"BilledCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd\n"

GATES: dict[str, dict] = {
    catalog.BYOK: {
        "make": _credential,
        "api": [
            Probe("list", _api("get", lambda o: "/api/v1/byok/credentials")),
            Probe(
                "create",
                _api(
                    "post",
                    lambda o: "/api/v1/byok/credentials",
                    {"provider": "anthropic", "api_key": "sk-ant-x"},
                ),
            ),
            Probe("read", _api("get", lambda o: f"/api/v1/byok/credentials/{o.pk}")),
            Probe("validate", _api("post", lambda o: f"/api/v1/byok/credentials/{o.pk}/validate")),
        ],
        "admin": [Probe("change", _admin_change(ProviderCredential))],
        "dashboard": [
            Probe("health", _page(lambda o: "/dashboard/byok/")),
            Probe("validate", _page(lambda o: f"/dashboard/byok/{o.pk}/validate/", "post")),
        ],
    },
    catalog.CREDIT_GRANTS: {
        "make": _grant,
        "api": [
            Probe("list", _api("get", lambda o: "/api/v1/credit-grants")),
            Probe(
                "create", _api("post", lambda o: "/api/v1/credit-grants", {"amount_usd": "5.00"})
            ),
            Probe("void", _api("post", lambda o: f"/api/v1/credit-grants/{o.pk}/void")),
        ],
        "admin": [Probe("change", _admin_change(CreditGrant))],
        "dashboard": [Probe("grants", _page(lambda o: "/dashboard/credits/"))],
    },
    catalog.INVOICE_RECONCILIATION: {
        "make": _import,
        "api": [
            Probe(
                "reconcile",
                _api(
                    "post",
                    lambda o: "/api/v1/reconciliations",
                    {"items": [{"reservation_id": "res_x", "invoiced_cost_usd": "1"}]},
                ),
            ),
            Probe(
                "import",
                _api(
                    "post",
                    lambda o: "/api/v1/reconciliations/imports?format=focus_csv",
                    FOCUS_HEADER,
                    "text/csv",
                ),
            ),
            Probe("list", _api("get", lambda o: "/api/v1/reconciliations/imports")),
            Probe("read", _api("get", lambda o: f"/api/v1/reconciliations/imports/{o.pk}")),
        ],
        "admin": [Probe("change", _admin_change(ReconciliationImport))],
        "dashboard": [Probe("imports", _page(lambda o: "/dashboard/reconciliation/"))],
    },
    catalog.LLM_GATEWAY: {
        "make": _llm_call,
        "api": [
            Probe(
                "reserve",
                _api(
                    "post",
                    lambda o: "/api/v1/llm/reservations",
                    {"model": "gpt-4o", "input_tokens": 1, "idempotency_key": "probe-api"},
                ),
            ),
        ],
        "admin": [Probe("change", _admin_change(LlmCall))],
        "dashboard": [Probe("calls", _page(lambda o: "/dashboard/llm/"))],
    },
    catalog.FORECAST_ALERTS: {
        "make": _forecast_alert,
        "api": [
            Probe(
                "enable",
                _api("patch", lambda o: f"/api/v1/budgets/{o.budget_id}", {"forecast_alert": True}),
            ),
            Probe(
                "create",
                _api(
                    "post",
                    lambda o: "/api/v1/budgets",
                    {"limit_usd": "5.00", "period": "daily", "forecast_alert": True},
                ),
            ),
        ],
        "admin": [Probe("change", _admin_change(BudgetAlert))],
        "dashboard": [
            Probe("forecast alerts", _page(lambda o: "/dashboard/alerts/?kind=forecast"))
        ],
    },
}
SURFACES = ("api", "admin", "dashboard")


def test_the_table_covers_the_catalog_exactly():
    assert set(GATES) == set(catalog.ENTITLEMENTS)
    for key, gates in GATES.items():
        for surface in SURFACES:
            assert gates.get(surface), f"{key} has no {surface} gate"


def test_every_entitlement_is_on_some_plan_and_maturities_are_known():
    for key, entitlement in catalog.ENTITLEMENTS.items():
        assert catalog.cheapest_plan_with(key) is not None, key
        assert entitlement.maturity in set(catalog.Maturity)


def _cases():
    for key in catalog.ENTITLEMENTS:
        for surface in SURFACES:
            for probe in GATES.get(key, {}).get(surface, []):
                yield pytest.param(key, surface, probe, id=f"{key}-{surface}-{probe.name}")


@pytest.fixture
def admin_client_(db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456!")
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.parametrize(("key", "surface", "probe"), list(_cases()))
@pytest.mark.usefixtures("provider_server")  # BYOK calls go to the local fake provider
def test_each_gate_refuses_without_and_passes_with_the_entitlement(
    key, surface, probe, admin_client_
):
    having = catalog.cheapest_plan_with(key)
    lacking = next(
        p for p in sorted(catalog.PLANS.values(), key=lambda p: p.rank) if key not in p.entitlements
    )
    tenant = factories.make_tenant("probe", plan=having.code)
    factories.make_project(tenant, "payments")
    obj = GATES[key]["make"](tenant)
    if surface == "api":
        _, plaintext = factories.make_api_key(tenant)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    elif surface == "dashboard":
        client = Client()
        client.force_login(factories.make_member(tenant, "olivia", "owner"))
    else:
        client = admin_client_

    tenant_plan_set(tenant=tenant, plan=lacking.code)
    refused = probe.call(client, obj)
    assert refused.status_code == 403, (key, surface, probe.name, refused.content[:300])
    assert b"FEATURE_NOT_ENTITLED" in refused.content
    if surface == "api":
        body = refused.json()
        assert body["code"] == "FEATURE_NOT_ENTITLED" and body["feature"] == key
        assert body["upgrade_to"] == having.code and body["plan"] == lacking.code
    if surface == "dashboard":  # a page of the dashboard, naming the plan to move to
        assert refused["Content-Type"].startswith("text/html")
        page = refused.content.decode()
        assert 'id="content"' in page and f"Upgrade to the {having.name} plan" in page

    tenant_plan_set(tenant=tenant, plan=having.code)
    allowed = probe.call(client, obj)
    assert allowed.status_code != 403 or b"FEATURE_NOT_ENTITLED" not in allowed.content, (
        key,
        surface,
        probe.name,
        allowed.status_code,
        allowed.content[:300],
    )
