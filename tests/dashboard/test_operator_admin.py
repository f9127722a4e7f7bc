"""The admin, fit for operators: USD in and out, no refused actions, writes through services."""

from __future__ import annotations

import re

import pytest

from controlplane.audit.models import LedgerEntry, LedgerVerification, WebhookEndpoint
from controlplane.audit.tasks import ledger_verify_run_task
from controlplane.identity.models import ApproverGroup
from controlplane.tenancy.models import Membership
from enforcement.models import Budget, CreditGrant
from tests import factories
from tests.dashboard.conftest import gate

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(admin_client):
    """pytest-django's signed-in superuser."""
    return admin_client


def visible(html: str) -> str:
    """The text a person reads (no tags, attributes, scripts or styles)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def kinds(tenant) -> list[str]:
    return list(
        LedgerEntry.objects.filter(tenant=tenant)
        .order_by("recorded_at")
        .values_list("kind", flat=True)
    )


def test_money_is_typed_and_shown_in_usd(root, world):
    tenant = world["tenant"]
    project = factories.make_project(tenant, "search")
    form = root.get("/admin/enforcement/budget/add/").content.decode()
    assert "Limit (USD)" in form and "micros" not in visible(form).lower()
    bad = root.post(
        "/admin/enforcement/budget/add/",
        {"tenant": tenant.pk, "project": project.pk, "period": "monthly", "limit_micros": "1e5"},
    )
    assert bad.status_code == 200 and "no exponent" in bad.content.decode()
    created = root.post(
        "/admin/enforcement/budget/add/",
        {
            "tenant": tenant.pk,
            "name": "Search",
            "project": project.pk,
            "environment": "",
            "period": "monthly",
            "limit_micros": "1,500.50",
        },
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    budget = Budget.objects.get(project=project)
    assert budget.limit_micros == 1_500_500_000
    assert "budget.created" in kinds(tenant)
    change = root.get(f"/admin/enforcement/budget/{budget.pk}/change/").content.decode()
    assert 'value="1500.50"' in change
    gate(tenant, "850.00")  # held on payments/prod
    listing = root.get("/admin/enforcement/budget/").content.decode()
    assert "1,500.50 USD" in listing and "850.00 USD" in listing and "150.00 USD" in listing

    grant = root.post(
        "/admin/enforcement/creditgrant/add/",
        {
            "tenant": tenant.pk,
            "pool": "emergency",
            "amount_micros": "75.25",
            "priority": "10",
            "effective_at_0": "2026-01-01",
            "effective_at_1": "00:00:00",
            "note": "incident",
        },
    )
    assert grant.status_code == 302, grant.content.decode()[:2000]
    assert CreditGrant.objects.get(note="incident").amount_micros == 75_250_000


def test_no_page_shows_micro_dollars(root, world):
    tenant = world["tenant"]
    gate(tenant, "40.00")
    from enforcement.models import BudgetPeriod, Decision, Reservation

    pages = [
        "/admin/enforcement/budget/",
        "/admin/enforcement/budgetperiod/",
        f"/admin/enforcement/budgetperiod/{BudgetPeriod.objects.first().pk}/change/",
        "/admin/enforcement/creditgrant/",
        f"/admin/enforcement/creditgrant/{CreditGrant.objects.first().pk}/change/",
        "/admin/enforcement/decision/",
        f"/admin/enforcement/decision/{Decision.objects.first().pk}/change/",
        "/admin/enforcement/reservation/",
        f"/admin/enforcement/reservation/{Reservation.objects.first().pk}/change/",
    ]
    for page in pages:
        html = visible(root.get(page).content.decode())
        assert "micros" not in html.lower(), page
        assert "USD" in html, page


@pytest.mark.parametrize(
    "model",
    [
        "enforcement/budget",
        "enforcement/creditgrant",
        "tenancy/tenant",
        "tenancy/project",
        "tenancy/apikey",
        "billing/plan",
    ],
)
def test_no_delete_that_the_services_refuse(root, world, model):
    from django.apps import apps

    app_label, name = model.split("/")
    obj = apps.get_model(app_label, name).objects.first()
    if obj is None:
        factories.make_api_key(world["tenant"])
        obj = apps.get_model(app_label, name).objects.first()
    listing = root.get(f"/admin/{model}/").content.decode()
    assert "delete_selected" not in listing
    assert root.get(f"/admin/{model}/{obj.pk}/delete/").status_code == 403


def test_names_read_well(root, world):
    index = root.get("/admin/").content.decode()
    assert "Outbox deliveries" in index and "deliverys" not in index
    assert "API keys" in index


def test_verify_queues_a_job_and_the_page_shows_its_result(
    root, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        asked = root.post("/admin/audit/ledgerentry/verify/", {"verify": "1"})
    assert asked.status_code == 302 and len(queued) == 1
    record = LedgerVerification.objects.get(trigger="admin")
    assert record.state == "queued" and record.tenant_id == ""  # every tenant
    waiting = root.get("/admin/audit/ledgerentry/verify/").content.decode()
    assert "<strong>Verifying.</strong>" in waiting
    ledger_verify_run_task(record.id)  # what the worker runs
    verify = root.get("/admin/audit/ledgerentry/verify/").content.decode()
    assert "<strong>Verifying.</strong>" not in verify
    # The admin's own message styles (contrast in both themes), not success text in its bg colour.
    assert '<li class="success"><strong>Intact.</strong>' in verify
    assert "message-success-bg" not in verify


def test_admin_writes_are_ledgered(root, world):
    tenant = world["tenant"]
    root.post(f"/admin/tenancy/tenant/{tenant.pk}/change/", {"name": "Acme Corp"})
    membership = Membership.objects.get(user=world["member"])
    root.post(f"/admin/tenancy/membership/{membership.pk}/delete/", {"post": "yes"})
    assert not Membership.objects.filter(pk=membership.pk).exists()
    added = root.post(
        "/admin/identity/approvergroup/add/",
        {"tenant": tenant.pk, "name": "sre", "external_id": "", "members": [world["owner"].pk]},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    outsider = factories.make_user("outsider")
    refused = root.post(
        "/admin/identity/approvergroup/add/",
        {"tenant": tenant.pk, "name": "ext", "external_id": "", "members": [outsider.pk]},
    )
    assert "Not members of this tenant: outsider" in refused.content.decode()
    assert not ApproverGroup.objects.filter(name="ext").exists()
    root.post(
        "/admin/audit/webhookendpoint/add/",
        {
            "tenant": tenant.pk,
            "url": "https://hooks.example.com/tollgate",
            "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=",
            "event_types": "[]",
            "active": "on",
        },
    )
    assert WebhookEndpoint.objects.filter(tenant=tenant).exists()
    recorded = kinds(tenant)
    for kind in (
        "tenant.renamed",
        "membership.removed",
        "approver_group.created",
        "webhook_endpoint.created",
    ):
        assert kind in recorded, (kind, recorded)
    group = LedgerEntry.objects.get(kind="approver_group.created", payload__name="sre")
    assert group.payload["members_added"] == [world["owner"].pk]
    hook = LedgerEntry.objects.get(kind="webhook_endpoint.created")
    assert "whsec_" not in str(hook.payload)
