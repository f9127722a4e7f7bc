"""Dashboard fixtures: a tenant with budgets, a policy with an approval threshold, people."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from billing.services.plans import tenant_plan_set
from controlplane.identity.models import ApproverGroup
from enforcement.services.gate import GateRequest, gate_decide
from tests import factories
from tests.enforcement.helpers import publish_policy

# Every dashboard page that needs no object id, as a signed-in user reaches it.
PAGES = [
    "/dashboard/",
    "/dashboard/approvals/",
    "/dashboard/decisions/",
    "/dashboard/alerts/",
    "/dashboard/credits/",
    "/dashboard/reconciliation/",
    "/dashboard/byok/",
    "/dashboard/llm/",
    "/dashboard/ledger/",
    "/dashboard/policies/",
    "/dashboard/policies/simulate/",
    "/dashboard/scim/",
    "/dashboard/keys/",
]

POLICY = {
    "version": 1,
    "description": "Approvals above 100 USD; big ones go to finops",
    "approval": {"threshold_usd": "100", "approvers": {"roles": ["owner", "admin"], "quorum": 1}},
    "rules": [
        {
            "id": "big-prod",
            "when": "request.env_class == 'prod' && request.amount_usd > 500.0",
            "then": "require_approval",
            "approvers": {"groups": ["finops"], "quorum": 1},
        }
    ],
}


def gate(tenant, usd: str, *, environment="prod", project="payments", requester="ci@example.com"):
    from controlplane.core.money import parse_usd

    return gate_decide(
        tenant=tenant,
        api_key=None,
        req=GateRequest(
            source="api",
            idempotency_key=uuid.uuid4().hex,
            project=project,
            environment=environment,
            estimated_micros=parse_usd(usd),
            requester=requester,
        ),
    ).response


@pytest.fixture
def world(tenant):
    tenant_plan_set(tenant=tenant, plan="pro")  # BYOK, credit grants, reconciliation
    payments = factories.make_project(tenant, "payments")
    factories.make_project(tenant, "platform")
    factories.make_budget(tenant, "10000.00")
    factories.make_budget(tenant, "2000.00", project=payments)
    factories.make_budget(tenant, "1000.00", project=payments, environment="prod")
    factories.make_grant(tenant, "250.00")
    group = ApproverGroup.objects.create(tenant=tenant, name="finops")
    publish_policy(tenant, POLICY)
    owner = factories.make_member(tenant, "olivia", "owner")
    member = factories.make_member(tenant, "mia", "member")
    fiona = factories.make_member(tenant, "fiona", "member")
    group.members.add(fiona)
    return {"tenant": tenant, "owner": owner, "member": member, "fiona": fiona}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(world) -> Client:
    return logged_in(world["owner"])
