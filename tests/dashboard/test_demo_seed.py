"""``seed_demo``: the story every page needs, idempotent, and the lines scripts parse."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.utils import timezone

from byok.models import ProviderCredential
from controlplane.audit.verify import verify_ledger
from controlplane.identity.models import ApproverGroup
from controlplane.tenancy.models import Tenant
from enforcement.models import ApprovalRequest, CreditGrant, Decision, Policy
from enforcement.selectors import budget_alert_badges, budget_lines

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_tells_the_whole_story_once(settings):
    settings.BYOK_PROVIDER_BASE_URLS = {}  # seed_demo starts its own fake provider for the check
    first = seed()
    assert re.search(r"^\s+login:\s+admin / \S+$", first, re.M), first
    assert re.search(r"^\s+API key:\s+tg_\w+_\w+", first, re.M), first
    tenant = Tenant.objects.get(slug="demo")

    levels = {
        line.budget.name: line.level
        for line in budget_lines(tenant=tenant, today=timezone.now().date())
    }
    assert levels["Platform"] == "near" and levels["Machine learning"] == "over"
    assert levels["Payments prod"] == "ok"
    assert CreditGrant.objects.filter(tenant=tenant).count() == 2
    badges = {b["budget_name"]: b for b in budget_alert_badges(tenant=tenant)}
    assert badges["Platform"]["threshold_percent"] == 80
    assert badges["Machine learning"]["threshold_percent"] == 100
    assert "Payments prod" not in badges or badges["Payments prod"]["threshold_percent"] < 80

    published = Policy.objects.get(tenant=tenant, state="published")
    assert published.document["approval"]["threshold_usd"] == "1000"
    assert published.warnings == []  # routes to finops, which exists
    assert ApproverGroup.objects.get(tenant=tenant, name="finops").members.count() >= 3

    states = sorted(ApprovalRequest.objects.filter(tenant=tenant).values_list("state", flat=True))
    assert states == ["approved", "cancelled", "denied", "pending", "pending"]
    waiting = ApprovalRequest.objects.get(tenant=tenant, state="pending", required_approvals=2)
    assert waiting.votes.count() == 1

    decisions = Decision.objects.for_tenant(tenant)
    days = set(decisions.values_list("created_at__date", flat=True))
    assert decisions.count() > 100 and len(days) >= 28  # a month of history
    outcomes = set(decisions.values_list("outcome", flat=True))
    assert outcomes == {"ALLOW", "ALLOW_WITH_CREDITS", "REQUIRE_APPROVAL", "DENY"}
    # Ids follow the story's time, so "newest first" reads as a timeline.
    ordered = list(decisions.order_by("id").values_list("created_at", flat=True))
    assert ordered == sorted(ordered)

    credential = ProviderCredential.objects.get(tenant=tenant)
    assert (credential.provider, credential.status) == ("anthropic", "valid")
    assert verify_ledger(tenant_id=tenant.id).ok

    again = seed()  # a new password and key, nothing else doubled
    assert again != first
    assert Decision.objects.for_tenant(tenant).count() == decisions.count()
    assert ApprovalRequest.objects.filter(tenant=tenant).count() == 5
