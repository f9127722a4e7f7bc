"""Shared steps for approval tests: gate a request that needs approval, approve it."""

from __future__ import annotations

import uuid

from tests import factories

GATE = "/api/v1/gate/decisions"


def gate(client, key=None, **body):
    body.setdefault("project", "payments")
    body.setdefault("environment", "prod")
    body.setdefault("estimated_cost_usd", "150.00")
    body.setdefault("requester", "ci@example.com")
    return client.post(GATE, body, format="json", HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex)


def pending_approval(client, key=None, **body) -> dict:
    response = gate(client, key=key, **body)
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["outcome"] == "REQUIRE_APPROVAL", answer
    return answer


def approve(client, approval_id: str, comment: str = "ok"):
    return client.post(
        f"/api/v1/approvals/{approval_id}/approve", {"comment": comment}, format="json"
    )


def deny(client, approval_id: str, comment: str = "no"):
    return client.post(f"/api/v1/approvals/{approval_id}/deny", {"comment": comment}, format="json")


def approved_token(tenant, ci_client, key=None, **body) -> tuple[dict, str]:
    """Gate (REQUIRE_APPROVAL), have an owner approve, return (gate answer, token)."""
    answer = pending_approval(ci_client, key=key, **body)
    owner = factories.make_member(tenant, f"owner-{uuid.uuid4().hex[:8]}", "owner")
    response = approve(factories.user_client(tenant, owner), answer["approval"]["id"])
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert token
    return answer, token
