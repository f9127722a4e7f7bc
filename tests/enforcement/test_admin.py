"""Admin smoke tests: every enforcement and ledger page renders, filters work, nothing secret shows,
and the ledger verification status is visible from the changelists."""

from __future__ import annotations

import pytest
from django.db import connection

from controlplane.audit.models import LedgerCheckpoint, LedgerEntry, LedgerVerification
from controlplane.audit.services import checkpoint_create
from controlplane.audit.tasks import ledger_verify_run_task
from enforcement.models import Budget, BudgetPeriod, CreditGrant, Decision, Reservation
from enforcement.services.reservations import reservation_commit
from tests import factories
from tests.enforcement.helpers import gate_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456!")
    client.force_login(user)
    return client


@pytest.fixture
def world(tenant):
    _, plaintext = factories.make_api_key(tenant, name="ci key")
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "100.00", project=project)
    factories.make_grant(tenant, "25.00")
    allowed = gate_service(tenant, micros=40_000_000)
    gate_service(tenant, micros=400_000_000)  # DENY
    committed = gate_service(tenant, micros=10_000_000)
    reservation_commit(reservation_id=committed["reservation"]["id"], actual_micros=9_000_000)
    checkpoint_create()
    return {"plaintext": plaintext, "reservation": allowed["reservation"]["id"]}


def _pages():
    decision = Decision.objects.first()
    return [
        "/admin/",
        "/admin/enforcement/budget/",
        f"/admin/enforcement/budget/{Budget.objects.first().pk}/change/",
        "/admin/enforcement/budget/add/",
        "/admin/enforcement/budgetperiod/",
        f"/admin/enforcement/budgetperiod/{BudgetPeriod.objects.first().pk}/change/",
        "/admin/enforcement/creditgrant/",
        f"/admin/enforcement/creditgrant/{CreditGrant.objects.first().pk}/change/",
        "/admin/enforcement/creditgrant/add/",
        "/admin/enforcement/decision/",
        f"/admin/enforcement/decision/{decision.pk}/change/",
        "/admin/enforcement/reservation/",
        f"/admin/enforcement/reservation/{Reservation.objects.first().pk}/change/",
        "/admin/audit/ledgerentry/",
        f"/admin/audit/ledgerentry/{LedgerEntry.objects.first().pk}/change/",
        "/admin/audit/ledgerentry/verify/",
        "/admin/audit/ledgercheckpoint/",
        f"/admin/audit/ledgercheckpoint/{LedgerCheckpoint.objects.first().pk}/change/",
        "/admin/audit/ledgerverification/",
    ]


def test_every_page_renders_and_shows_no_secret(admin_client, world):
    for page in _pages():
        response = admin_client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        html = response.content.decode()
        assert world["plaintext"] not in html, page
        assert world["plaintext"].rsplit("_", 1)[1] not in html, page


def test_budget_changelist_shows_current_period_usage(admin_client, world):
    html = admin_client.get("/admin/enforcement/budget/").content.decode()
    # 40 + 10 held then 9 committed: reserved 40.00, spent 9.00, available 51.00.
    for figure in ("100.00", "40.00", "9.00", "51.00"):
        assert figure in html, figure


def test_decisions_are_read_only_and_filterable(admin_client, world, tenant):
    denied = Decision.objects.get(outcome="DENY")
    project = denied.project
    filters = [
        ("outcome__exact=DENY", {denied.pk}),
        (f"project__id__exact={project.pk}", set(Decision.objects.values_list("pk", flat=True))),
        ("environment=prod", set(Decision.objects.values_list("pk", flat=True))),
        ("reason_code=BUDGET_EXCEEDED", {denied.pk}),
    ]
    for query, expected in filters:
        response = admin_client.get(f"/admin/enforcement/decision/?{query}")
        assert response.status_code == 200, query
        shown = {obj.pk for obj in response.context["cl"].result_list}
        assert shown == expected, query
    change = admin_client.get(f"/admin/enforcement/decision/{denied.pk}/change/")
    assert b'name="_save"' not in change.content
    before = Decision.objects.count()
    admin_client.post(f"/admin/enforcement/decision/{denied.pk}/delete/", {"post": "yes"})
    assert Decision.objects.count() == before


def _verify_in_a_worker(admin_client) -> LedgerVerification:
    """The admin's Verify now queues a job; run it as the worker does."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        assert (
            admin_client.post("/admin/audit/ledgerentry/verify/", {"verify": "1"}).status_code
            == 302
        )
    assert len(queued) == 1
    record = LedgerVerification.objects.get(trigger="admin", state="queued")
    ledger_verify_run_task(record.id)
    record.refresh_from_db()
    return record


def test_ledger_status_is_visible_and_recorded(admin_client, world):
    html = admin_client.get("/admin/audit/ledgerentry/").content.decode()
    assert 'id="ledger-status"' in html and "was never verified" in html
    assert LedgerCheckpoint.objects.first().id in html
    record = _verify_in_a_worker(admin_client)
    assert "Intact." in admin_client.get("/admin/audit/ledgerentry/verify/").content.decode()
    assert record.ok and record.trigger == "admin" and record.entries_checked > 0
    html = admin_client.get("/admin/audit/ledgerverification/").content.decode()
    assert "intact" in html and 'id="ledger-status"' in html


def test_tampering_shows_in_the_status(admin_client, world):
    entry = LedgerEntry.objects.filter(kind="decision.recorded").first()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE audit_ledgerentry DISABLE TRIGGER audit_ledgerentry_append_only"
        )
        cursor.execute(
            "UPDATE audit_ledgerentry SET payload = '{\"amount\": 1}' WHERE id = %s", [entry.id]
        )
        cursor.execute("ALTER TABLE audit_ledgerentry ENABLE TRIGGER audit_ledgerentry_append_only")
    _verify_in_a_worker(admin_client)
    verify = admin_client.get("/admin/audit/ledgerentry/verify/").content.decode()
    assert "TAMPERING DETECTED" in verify and entry.id in verify
    status = admin_client.get("/admin/audit/ledgerentry/").content.decode()
    assert "TAMPERING DETECTED" in status
    assert not LedgerVerification.objects.get().ok


def test_admin_void_action_goes_through_the_service(admin_client, world):
    grant = CreditGrant.objects.get()
    admin_client.post(
        "/admin/enforcement/creditgrant/", {"action": "void", "_selected_action": [grant.pk]}
    )
    grant.refresh_from_db()
    assert grant.voided_at is not None
    assert LedgerEntry.objects.filter(kind="credit_grant.voided").count() == 1


def test_admin_release_action_gives_the_money_back(admin_client, world):
    rid = world["reservation"]
    admin_client.post(
        "/admin/enforcement/reservation/", {"action": "release", "_selected_action": [rid]}
    )
    assert Reservation.objects.get(pk=rid).state == "released"


def test_beat_task_and_command_record_their_verification(world):
    from django.core.management import call_command

    from controlplane.audit.tasks import ledger_verify_task

    assert ledger_verify_task() is True
    call_command("verify_ledger")
    assert sorted(LedgerVerification.objects.values_list("trigger", flat=True)) == [
        "command",
        "task",
    ]
