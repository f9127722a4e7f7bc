"""Billing admin: pages render, plan changes and reactivation go through the services."""

from __future__ import annotations

import pytest

from billing.models import TenantPlan
from billing.services.plans import plans_sync
from billing.services.subscriptions import subscription_link, subscription_transition
from controlplane.audit.chain import control_chain
from controlplane.audit.models import LedgerEntry

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model", ["plan", "tenantplan", "subscription", "invoice", "paymentevent", "dunningcampaign"]
)
def test_changelists_render(admin_client, tenant, model):
    subscription_link(tenant=tenant, provider="stripe", customer_id="cus_1", actor="t")
    assert admin_client.get(f"/admin/billing/{model}/").status_code == 200


def test_changing_a_tenants_plan_is_ledgered(admin_client, tenant):
    plans_sync()  # the migration wrote them; a transactional test elsewhere may have flushed
    response = admin_client.post(
        f"/admin/billing/tenantplan/{tenant.pk}/change/", {"plan": "enterprise"}
    )
    assert response.status_code == 302
    assert TenantPlan.objects.get(tenant=tenant).plan_id == "enterprise"
    last = LedgerEntry.objects.filter(chain=control_chain(tenant.id)).order_by("-seq").first()
    assert last.kind == "billing.plan.changed" and last.payload["to"] == "enterprise"


def test_reactivate_action(admin_client, tenant):
    sub = subscription_link(tenant=tenant, provider="stripe", customer_id="cus_1", actor="t")
    subscription_transition(subscription_id=sub.id, to="canceled", reason="t", actor="t")
    admin_client.post(
        "/admin/billing/subscription/", {"action": "reactivate", "_selected_action": [sub.pk]}
    )
    sub.refresh_from_db()
    assert sub.state == "active"
