"""Every dashboard page: login, tenant access, what it shows, and what it refuses."""

from __future__ import annotations

import pytest
from django.test import Client

from controlplane.audit.models import LedgerVerification
from controlplane.audit.tasks import ledger_verify_run_task
from controlplane.audit.verify import verify_ledger
from enforcement.models import Policy, SimulationJob
from enforcement.tasks import policy_simulate_task
from tests import factories
from tests.dashboard.conftest import PAGES, gate, logged_in

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_the_login_page_and_root_redirects(db):
    client = Client()
    assert client.get("/").headers["Location"] == "/dashboard/"
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 302, page
        assert response.headers["Location"] == f"/dashboard/login/?next={page}"


def test_login_with_a_password_then_every_page_renders(world):
    client = Client()
    page = client.get("/dashboard/login/")
    assert page.status_code == 200 and b'for="id_username"' in page.content
    wrong = client.post("/dashboard/login/", {"username": "olivia", "password": "nope"})
    assert b"did not match" in wrong.content
    signed_in = client.post(
        "/dashboard/login/", {"username": "olivia", "password": "pw-123456!", "next": "/dashboard/"}
    )
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/dashboard/"
    gate(world["tenant"], "40.00")
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:400])
        assert b"Skip to content" in response.content


def test_overview_shows_budgets_in_usd_with_threshold_colours(world, owner_client):
    tenant = world["tenant"]
    gate(tenant, "850.00")  # REQUIRE_APPROVAL: held on payments/prod (1000): 85 % -> near
    page = owner_client.get("/dashboard/").content.decode()
    assert "1,000.00 USD" in page and "850.00 USD" in page  # limit, reserved
    assert "85%" in page and 'class="near"' in page
    assert "Micros" not in page and "micros" not in page
    assert '<svg class="chart"' in page and "Committed spend per day" in page


def test_no_membership_is_refused_and_staff_may_switch_tenants(world, other_tenant):
    stranger = factories.make_user("stranger")
    refused = logged_in(stranger).get("/dashboard/")
    assert refused.status_code == 403 and b"not a member" in refused.content

    staff = factories.make_user("ops", is_staff=True)
    client = logged_in(staff)
    assert b"operator (staff)" in client.get("/dashboard/").content
    client.post("/dashboard/tenant/", {"tenant": other_tenant.slug, "next": "/dashboard/"})
    assert other_tenant.name.encode() in client.get("/dashboard/").content

    # A member cannot switch to a tenant they are not in.
    member = logged_in(world["member"])
    member.post("/dashboard/tenant/", {"tenant": other_tenant.slug})
    assert world["tenant"].name.encode() in member.get("/dashboard/").content


def test_another_tenants_objects_are_not_found(world, other_tenant, owner_client):
    factories.make_project(other_tenant, "payments")
    foreign = gate(other_tenant, "10.00")
    assert owner_client.get(f"/dashboard/decisions/{foreign['decision_id']}/").status_code == 404
    assert owner_client.get("/dashboard/policies/99/").status_code == 404
    response = owner_client.post("/dashboard/approvals/apr_nope/vote/", {"vote": "approve"})
    assert response.status_code == 404


def test_decisions_explorer_filters_and_pages(world, owner_client):
    tenant = world["tenant"]
    for _ in range(3):
        gate(tenant, "5.00", environment="dev")
    denied = gate(tenant, "5000.00")  # beyond every budget and the credits
    assert denied["outcome"] == "DENY"
    page = owner_client.get("/dashboard/decisions/?outcome=DENY").content.decode()
    assert denied["decision_id"] in page and page.count("badge over") == 1
    dev = owner_client.get("/dashboard/decisions/?environment=dev&project=payments").content
    assert dev.decode().count("/ dev") == 3
    from controlplane.dashboard.views import decisions as view

    original = view.PAGE_SIZE
    view.PAGE_SIZE = 2
    try:
        first = owner_client.get("/dashboard/decisions/").content.decode()
        assert 'rel="next"' in first
        older = first.split('href="?before=')[1].split('"')[0]
        second = owner_client.get(f"/dashboard/decisions/?before={older}").content.decode()
        assert "Newest" in second
    finally:
        view.PAGE_SIZE = original
    detail = owner_client.get(f"/dashboard/decisions/{denied['decision_id']}/").content.decode()
    assert "BUDGET_EXCEEDED" in detail and "Waterfall" in detail and "version 2" in detail
    assert "Raise the budget limit" in detail  # the remediation


def test_policies_publish_is_for_owners_and_shows_warnings(world, owner_client):
    tenant = world["tenant"]
    member = logged_in(world["member"])
    draft_text = (
        "version: 1\napproval:\n  threshold_usd: '50'\n  approvers: {groups: [nobody-here]}\n"
    )
    assert member.post("/dashboard/policies/", {"document": draft_text}).status_code == 403
    bad = owner_client.post("/dashboard/policies/", {"document": "version: 2\n"})
    assert bad.status_code == 400 and b"version" in bad.content
    created = owner_client.post("/dashboard/policies/", {"document": draft_text})
    assert created.status_code == 302
    draft = Policy.objects.get(tenant=tenant, state="draft")
    page = owner_client.get(f"/dashboard/policies/{draft.version}/").content.decode()
    assert "nobody-here" in page and "--- v2" in page  # the warning and the diff to v2
    assert member.post(f"/dashboard/policies/{draft.version}/").status_code == 403
    published = owner_client.post(f"/dashboard/policies/{draft.version}/", follow=True)
    assert f"Version {draft.version} is published." in published.content.decode()
    assert "nobody can decide" in published.content.decode()  # the publish-time warning
    rollback = owner_client.post("/dashboard/policies/2/", follow=True).content.decode()
    assert "Rolled back" in rollback
    assert Policy.objects.get(tenant=tenant, state="published").rolled_back_from == 2
    assert verify_ledger(tenant_id=tenant.id).ok


def test_simulation_form_starts_a_job_and_its_page_shows_progress_then_the_report(
    world, owner_client, django_capture_on_commit_callbacks
):
    tenant = world["tenant"]
    for _ in range(3):
        gate(tenant, "60.00")  # ALLOW under the published threshold of 100 USD
    stricter = "version: 1\napproval:\n  threshold_usd: '50'\n"
    from django.utils import timezone

    today = timezone.now().date().isoformat()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = owner_client.post(
            "/dashboard/policies/simulate/", {"document": stricter, "since": today, "until": today}
        )
    assert response.status_code == 302, response.content[:500]
    job = SimulationJob.objects.get(tenant=tenant)
    assert response["Location"] == f"/dashboard/policies/simulations/{job.id}/"
    assert len(queued) == 1 and job.requested_by.startswith("dashboard:")
    waiting = owner_client.get(response["Location"]).content.decode()
    assert "Simulation queued" in waiting and "data-poll" in waiting
    assert "would change" not in waiting  # nothing was evaluated in the request
    policy_simulate_task(job.id)  # what the worker runs
    page = owner_client.get(response["Location"]).content.decode()
    assert "data-poll" not in page
    assert "3 decisions would change" in page and "APPROVAL_REQUIRED" in page
    with django_capture_on_commit_callbacks(execute=False):
        by_version = owner_client.post(
            "/dashboard/policies/simulate/", {"version": "1", "since": today, "until": today}
        )
    assert by_version.status_code == 302
    neither = owner_client.post("/dashboard/policies/simulate/", {"since": today, "until": today})
    assert neither.status_code == 400 and b"one of the two" in neither.content
    assert owner_client.get("/dashboard/policies/simulations/sim_x/").status_code == 404
    foreign = SimulationJob.objects.create(
        tenant=factories.make_tenant("other-sim"),
        policy_sha256=job.policy_sha256,
        since=job.since,
        until=job.until,
        max_decisions=10,
        created_at=job.created_at,
    )
    assert owner_client.get(f"/dashboard/policies/simulations/{foreign.id}/").status_code == 404


def test_ledger_verify_now_and_signed_export(
    world, owner_client, django_capture_on_commit_callbacks
):
    tenant = world["tenant"]
    member = logged_in(world["member"])
    assert member.post("/dashboard/ledger/").status_code == 403
    assert member.get("/dashboard/ledger/export/?format=jsonl").status_code == 403
    with django_capture_on_commit_callbacks(execute=False) as queued:
        started = owner_client.post("/dashboard/ledger/")
    record = LedgerVerification.objects.get(trigger="dashboard")
    assert record.state == "queued" and record.tenant_id == tenant.id and len(queued) == 1
    assert started.status_code == 302
    assert started["Location"] == f"/dashboard/ledger/?verification={record.id}"
    waiting = owner_client.get(started["Location"]).content.decode()
    assert "A worker is verifying" in waiting and "data-poll" in waiting
    ledger_verify_run_task(record.id)  # what the worker runs
    page = owner_client.get(started["Location"]).content.decode()
    assert "Verified just now" in page and "intact" in page and "data-poll" not in page
    record.refresh_from_db()
    assert record.state == "done" and record.ok
    export = owner_client.get("/dashboard/ledger/export/?format=csv")
    assert export.status_code == 200 and export["Content-Type"] == "text/csv"
    assert '"count":' in export["X-Tollgate-Manifest"]
    assert owner_client.get("/dashboard/ledger/export/?format=xml").status_code == 400


def test_byok_page_needs_the_plan_feature(world, owner_client):
    from billing.services.plans import tenant_plan_set

    assert b"BYOK requests today" in owner_client.get("/dashboard/byok/").content
    tenant_plan_set(tenant=world["tenant"], plan="growth")  # everything but BYOK
    refused = owner_client.get("/dashboard/byok/")
    assert refused.status_code == 403 and b"does not include" in refused.content
