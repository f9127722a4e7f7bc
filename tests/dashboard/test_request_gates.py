"""The request gates apply to dashboard pages of a tenant (a signed-in person's requests are
that tenant's traffic), and their refusals are pages; signing in/out and switching tenant stay
reachable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from billing.gates.cache import invalidate_tenant
from billing.models import Subscription
from controlplane.tenancy.services import membership_set, tenant_set_lifecycle
from tests import factories
from tests.billing.conftest import reset_gates
from tests.billing.test_gates import _subscribed
from tests.dashboard.conftest import logged_in

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture(autouse=True)
def fresh_gates(settings):
    settings.PROTECTION_KEY_PREFIX = f"test:{uuid.uuid4().hex}:gate:"
    reset_gates()
    yield
    reset_gates()


def suspend(tenant) -> None:
    tenant_set_lifecycle(tenant=tenant, lifecycle="suspended")
    invalidate_tenant(tenant.id)  # the gate's lifecycle cache (LIFECYCLE_CACHE_SECONDS)


def refused_page(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'id="content"' in page and f"<code>{code}</code>" in page
    return page


def test_a_suspended_tenant_is_refused_as_a_page(world, owner_client):
    assert owner_client.get("/dashboard/").status_code == 200
    suspend(world["tenant"])
    for path in ("/dashboard/", "/dashboard/decisions/", "/dashboard/credits/"):
        page = refused_page(owner_client.get(path), 403, "TENANT_SUSPENDED")
        assert "Contact your Tollgate operator" in page
    # Nothing tenant-bound runs: a vote or a verification is refused before the view.
    refused_page(owner_client.post("/dashboard/ledger/"), 403, "TENANT_SUSPENDED")


def test_sign_out_and_switching_to_another_tenant_stay_reachable(world, owner_client):
    other = factories.make_tenant("globex")
    membership_set(tenant=other, user=world["owner"], role="owner")
    owner_client.post("/dashboard/tenant/", {"tenant": world["tenant"].slug})
    suspend(world["tenant"])
    page = refused_page(owner_client.get("/dashboard/"), 403, "TENANT_SUSPENDED")
    assert 'id="tenant-switch"' in page  # the way out is on the refusal page
    switched = owner_client.post("/dashboard/tenant/", {"tenant": "globex", "next": "/dashboard/"})
    assert switched.status_code == 302
    assert owner_client.get("/dashboard/").status_code == 200
    assert owner_client.post("/dashboard/logout/").status_code == 302
    assert owner_client.get("/dashboard/login/").status_code == 200


def test_unpaid_past_grace_is_402_as_a_page(world, owner_client):
    tenant = world["tenant"]
    sub = _subscribed(tenant, "past_due")
    assert owner_client.get("/dashboard/").status_code == 200  # within grace
    Subscription.objects.filter(pk=sub.id).update(
        grace_until=datetime.now(UTC) - timedelta(seconds=1)
    )
    invalidate_tenant(tenant.id)
    page = refused_page(owner_client.get("/dashboard/"), 402, "PAYMENT_REQUIRED")
    assert "Pay the open invoice" in page


def test_dashboard_requests_count_against_the_tenant_rate_limit(world, owner_client, settings):
    settings.PROTECTION_TENANT_RATE, settings.PROTECTION_TENANT_BURST = 0.01, 2
    assert owner_client.get("/dashboard/").status_code == 200
    assert owner_client.get("/dashboard/").status_code == 200
    response = owner_client.get("/dashboard/")
    refused_page(response, 429, "RATE_LIMITED")
    assert int(response["Retry-After"]) >= 1
    other = factories.make_tenant("globex")
    outsider = factories.make_member(other, "gus", "owner")
    assert logged_in(outsider).get("/dashboard/").status_code == 200  # another tenant is not


def test_anonymous_and_tenantless_requests_are_not_tenant_traffic(world, client):
    assert client.get("/dashboard/").status_code == 302  # to the login page, no gate involved
    loner = factories.make_user("loner")
    refused = logged_in(loner).get("/dashboard/")
    assert refused.status_code == 403 and b"not a member of any tenant" in refused.content
