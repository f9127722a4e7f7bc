"""An operator's day in a real browser: sign in, read, approve, verify, simulate; a11y checks."""

from __future__ import annotations

import io
import re
import uuid

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.xdist_group("browser")
# How long a page may follow a background job (a real worker, on a shared 2-CPU machine).
WORKER_MS = 60_000

PAGES = {
    "overview": "/dashboard/",
    "approvals": "/dashboard/approvals/",
    "decisions": "/dashboard/decisions/",
    "alerts": "/dashboard/alerts/",
    "credits": "/dashboard/credits/",
    "reconciliation": "/dashboard/reconciliation/",
    "byok": "/dashboard/byok/",
    "llm": "/dashboard/llm/",
    "ledger": "/dashboard/ledger/",
    "policies": "/dashboard/policies/",
    "policy": "/dashboard/policies/2/",
    "simulate": "/dashboard/policies/simulate/",
    "scim": "/dashboard/scim/",
    "keys": "/dashboard/keys/",
}


def shot(page: Page, path) -> None:
    """A screenshot of the page from the top, at most 1,800 px tall (docs stay light)."""
    height = min(page.evaluate("document.documentElement.scrollHeight"), 1800)
    page.screenshot(
        path=path, full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": height}
    )


def sign_in(page: Page, base: str, demo: dict) -> None:
    page.goto(f"{base}/")  # redirects to the dashboard, which asks for a login
    expect(page).to_have_url(f"{base}/dashboard/login/?next=/dashboard/")
    page.get_by_label("Username").fill(demo["username"])
    page.get_by_label("Password").fill(demo["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/dashboard/")


def test_operator_signs_in_approves_verifies_and_simulates(
    page: Page, live_server, demo, screenshots, celery_worker
):
    base = live_server.url
    sign_in(page, base, demo)

    # Overview: budgets against limits with threshold colours, the month's chart.
    budgets = page.get_by_role("region", name="Budgets, current period")
    expect(budgets.get_by_role("row", name="Platform")).to_contain_text("near limit")
    expect(budgets.get_by_role("row", name="Machine learning")).to_contain_text("over")
    # Alert badges: the highest threshold each budget's spend reached, forecasts over limits.
    expect(budgets.get_by_role("row", name="Platform")).to_contain_text("alert: 80 % reached")
    expect(budgets.get_by_role("row", name="Machine learning")).to_contain_text(
        "alert: 100 % reached"
    )
    expect(page.locator("svg.chart rect.bar").first).to_be_visible()
    shot(page, screenshots / "overview.png")

    # A pipeline asks the gate for 1,500 USD in payments/prod: the policy wants a person. Its
    # key is an operator's (issued from the shell): a key minted with the admin's demo key
    # would stay the admin's, and the admin could not approve its requests.
    issued = io.StringIO()
    call_command(
        "create_api_key",
        "demo",
        "--name=ci",
        "--project=payments",
        "--scopes",
        "gate:write",
        "approvals:read",
        stdout=issued,
    )
    ci_key = issued.getvalue().strip().splitlines()[-1]
    ci = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ci_key}"})
    run_key = f"ci:{uuid.uuid4().hex[:8]}:apply"
    body = {
        "project": "payments",
        "environment": "prod",
        "estimated_cost_usd": "1500.00",
        "requester": "ci-bot@example.com",
    }
    asked = ci.post("/api/v1/gate/decisions", json=body, headers={"Idempotency-Key": run_key})
    asked = asked.json()
    assert asked["outcome"] == "REQUIRE_APPROVAL"
    approval_id = asked["approval"]["id"]

    # The operator approves it in the queue, with the keyboard only.
    page.get_by_role("link", name="Approvals").click()
    card = page.get_by_role("article").filter(has_text=approval_id)
    expect(card).to_contain_text("0 of 1 approval")
    expect(card).to_contain_text("Payments prod")  # the waterfall names the budgets
    shot(page, screenshots / "approvals.png")
    card.get_by_label("Comment (recorded with your vote)").focus()
    page.keyboard.type("Capacity for the launch")
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Approve 1,500.00 USD")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"{approval_id} approved")

    # The pipeline polls, gets the token and continues: ALLOW / APPROVED, same reservation.
    polled = ci.post("/api/v1/gate/decisions", json=body, headers={"Idempotency-Key": run_key})
    token = polled.json()["approval"]["token"]
    continued = ci.post(
        "/api/v1/gate/decisions",
        json={**body, "approval_token": token},
        headers={"Idempotency-Key": run_key},
    ).json()
    assert (continued["outcome"], continued["reason_code"]) == ("ALLOW", "APPROVED")
    assert continued["reservation"]["id"] == asked["reservation"]["id"]

    # The explorer shows the continuation; its page explains it and links the original.
    page.get_by_role("link", name="Decisions").click()
    page.get_by_label("Outcome").select_option("ALLOW")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=continued["decision_id"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(continued["decision_id"])
    expect(page.locator("main")).to_contain_text("APPROVED")
    expect(page.get_by_role("link", name=asked["decision_id"])).to_be_visible()
    shot(page, screenshots / "decision.png")

    # Ledger: verify now. A worker verifies; the page follows the job and shows its result.
    page.get_by_role("link", name="Ledger").click()
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("#ledger-status")).to_contain_text("Verified just now", timeout=WORKER_MS)
    expect(page.locator("#ledger-status")).to_contain_text("intact")
    shot(page, screenshots / "ledger.png")

    # Simulation: a stricter draft over the last 30 days.
    page.get_by_role("link", name="Policies").click()
    page.get_by_role("link", name="Simulate a policy").click()
    page.get_by_label("Draft document (YAML or JSON)").fill(
        "version: 1\napproval:\n  threshold_usd: '500'\n"
    )
    page.get_by_role("button", name="Run simulation").click()
    expect(page).to_have_url(re.compile(r"/dashboard/policies/simulations/sim_\w+/$"))
    result = page.locator("#simulation-result")
    expect(result).to_contain_text("would change", timeout=WORKER_MS)
    expect(result).to_contain_text("APPROVAL_REQUIRED")
    shot(page, screenshots / "simulate.png")

    for name in ("decisions", "byok", "policies", "policy", "keys"):
        page.goto(base + PAGES[name])
        shot(page, screenshots / f"{name}.png")


def test_owner_connects_an_identity_provider(page: Page, live_server, demo, screenshots):
    base = live_server.url
    sign_in(page, base, demo)
    page.get_by_role("link", name="SCIM").click()
    expect(page.locator("#scim-base-url")).to_have_text(f"{base}/scim/v2")
    page.get_by_label("Name of the new token").fill("Okta (demo)")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-scim-token").inner_text().strip()
    assert token.startswith("tgscim_")

    # The identity provider provisions a person and a group with it, over HTTP.
    idp = httpx.Client(
        base_url=f"{base}/scim/v2",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    person = idp.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "sam@example.com",
            "externalId": "00u-sam",
            "name": {"givenName": "Sam", "familyName": "Lee"},
            "emails": [{"value": "sam@example.com", "primary": True}],
            "active": True,
        },
    )
    assert person.status_code == 201, person.text
    group = idp.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "finops-okta",
            "members": [{"value": person.json()["id"]}],
        },
    )
    assert group.status_code == 201, group.text

    page.goto(f"{base}/dashboard/scim/")  # the token is not on the page any more
    expect(page.locator("#new-scim-token")).to_have_count(0)
    people = page.get_by_role("region", name="People provisioned by SCIM")
    expect(people.get_by_role("row", name="sam@example.com")).to_contain_text("finops-okta")
    expect(
        page.get_by_role("region", name="Recent SCIM and approver group changes")
    ).to_contain_text("scim.user.created")
    shot(page, screenshots / "scim.png")

    # Rotation with a grace period: the new token is shown once, the old one works a day.
    page.get_by_role("button", name="Rotate Okta (demo), the old token works 24 more hours").click()
    successor = page.locator("#new-scim-token").inner_text().strip()
    assert successor.startswith("tgscim_") and successor != token
    assert idp.get("/Users").status_code == 200
    page.goto(f"{base}/dashboard/scim/")
    expect(page.get_by_role("region", name="Tokens")).to_contain_text("rotated, works until")


def test_every_page_passes_axe_and_works_with_the_keyboard(page: Page, live_server, demo):
    base = live_server.url
    axe = Axe()
    problems = {}
    page.goto(f"{base}/dashboard/login/")
    assert axe.run(page).response["violations"] == []
    sign_in(page, base, demo)
    page.goto(f"{base}/dashboard/decisions/?outcome=REQUIRE_APPROVAL")
    decision = page.locator("td.mono a").first.get_attribute("href")
    for name, path in {**PAGES, "decision": decision}.items():
        page.goto(base + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400, name  # fits
        violations = axe.run(page).response["violations"]
        if violations:
            problems[name] = [
                (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations
            ]
    assert problems == {}

    # Keyboard: the first Tab reaches "Skip to content", which moves focus to the page.
    page.goto(base + "/dashboard/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    # Every control on every page is reachable by Tab and shows where focus is.
    page.goto(base + "/dashboard/approvals/")
    outlines = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        outlines.add(page.evaluate("getComputedStyle(document.activeElement).outlineStyle"))
    assert "none" not in outlines


def test_the_admin_fits_an_operator_screen(page: Page, live_server, demo, django_user_model):
    """Changelists fit at 1400 px (no horizontal scroll) and show money in USD."""
    base = live_server.url
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username:").fill(demo["username"])
    page.get_by_label("Password:").fill(demo["password"])
    page.get_by_role("button", name="Log in").click()
    for model in (
        "enforcement/budget",
        "enforcement/budgetperiod",
        "enforcement/creditgrant",
        "enforcement/decision",
        "enforcement/reservation",
        "enforcement/approvalrequest",
        "tenancy/apikey",
        "audit/ledgerentry",
        "audit/outboxdelivery",
        "byok/providercredential",
    ):
        page.goto(f"{base}/admin/{model}/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1400, (model, width)
    page.goto(f"{base}/admin/enforcement/budget/")
    expect(page.locator("#result_list")).to_contain_text("USD")
    page.goto(f"{base}/admin/audit/ledgerentry/verify/")
    success = page.locator("#verify-result li.success")
    expect(success).to_contain_text("Intact.")
    colour, background = success.evaluate(
        "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
    )
    assert colour != background  # the old page painted the text in its own background colour
