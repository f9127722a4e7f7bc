"""Policies see ``request.resource.attributes``, and warn when they route to missing groups."""

from __future__ import annotations

import uuid

import pytest

from controlplane.identity.models import ApproverGroup
from tests import factories
from tests.api_contracts import assert_problem

pytestmark = pytest.mark.django_db

NO_GPU_IN_DEV = """\
version: 1
rules:
  - id: no-gpu-in-dev
    when: >-
      request.env_class == 'nonprod' && 'gpu' in request.resource.attributes
      && request.resource.attributes.gpu > 0
    then: deny
    reason_code: GPU_NOT_IN_DEV
    message: GPUs are not allowed outside production.
"""

ROUTED_TO_FINOPS = """\
version: 1
approval:
  threshold_usd: "100"
  approvers: {roles: [owner]}
rules:
  - id: big-prod
    when: request.amount_usd > 500.0
    then: require_approval
    approvers: {groups: [finops], quorum: 1}
"""


def post_yaml(client, text):
    return client.generic(
        "POST", "/api/v1/policies", text.encode(), content_type="application/yaml"
    )


def publish(client, version):
    return client.post(f"/api/v1/policies/{version}/publish")


def gate(client, **body):
    body = {"project": "ml", "environment": "dev", "estimated_cost_usd": "5.00", **body}
    return client.post(
        "/api/v1/gate/decisions", body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
    )


def test_rules_see_resource_attributes(client_a, tenant):
    factories.make_project(tenant, "ml")
    draft = post_yaml(client_a, NO_GPU_IN_DEV)
    assert draft.status_code == 201, draft.content
    assert draft.json()["warnings"] == []
    assert publish(client_a, draft.json()["version"]).status_code == 200

    gpu = gate(client_a, resource={"type": "k8s_pod", "attributes": {"gpu": 2}}).json()
    assert (gpu["outcome"], gpu["reason_code"], gpu["rule_id"]) == (
        "DENY",
        "GPU_NOT_IN_DEV",
        "no-gpu-in-dev",
    )
    for resource in ({"type": "k8s_pod", "attributes": {"gpu": 0}}, {"type": "k8s_pod"}, None):
        body = {"resource": resource} if resource is not None else {}
        answer = gate(client_a, **body).json()
        assert answer["outcome"] == "ALLOW" and answer["rule_errors"] == [], answer
    prod = gate(client_a, environment="prod", resource={"attributes": {"gpu": 4}}).json()
    assert prod["outcome"] == "ALLOW"


@pytest.mark.parametrize(
    "when",
    [
        "request.env_class == 'nonprod' && request.resource.gpu > 0",
        "'gpu' in request.resource && request.resource.gpu > 0",
    ],
)
def test_a_resource_field_that_is_never_there_is_refused_with_the_fix(client_a, when):
    text = f'version: 1\nrules:\n  - id: gpu\n    when: "{when}"\n    then: deny\n'
    body = assert_problem(post_yaml(client_a, text), 400, "POLICY_INVALID")
    (error,) = body["errors"]
    assert error["code"] == "cel_unknown_field" and error["field"] == "rules[0].when"
    assert "request.resource.attributes.gpu" in error["message"]


def test_routing_to_a_missing_group_warns_at_create_and_at_publish(client_a, tenant):
    draft = post_yaml(client_a, ROUTED_TO_FINOPS)
    assert draft.status_code == 201, draft.content
    (warning,) = draft.json()["warnings"]
    assert warning["code"] == "unknown_approver_group"
    assert warning["field"] == "rules[0].approvers.groups"
    assert "finops" in warning["message"] and "nobody can decide" in warning["message"]

    # The group appears before publishing: the publish answer no longer warns.
    ApproverGroup.objects.create(tenant=tenant, name="finops")
    published = publish(client_a, draft.json()["version"])
    assert published.status_code == 200 and published.json()["warnings"] == []


def test_publish_warns_when_the_group_is_still_missing(client_a, tenant):
    text = ROUTED_TO_FINOPS.replace(
        "{groups: [finops], quorum: 1}", "{groups: [finops], roles: [admin]}"
    )
    version = post_yaml(client_a, text).json()["version"]
    published = publish(client_a, version).json()
    (warning,) = published["warnings"]
    assert warning["code"] == "unknown_approver_group"
    assert "only the roles admin can decide" in warning["message"]
    assert client_a.get(f"/api/v1/policies/{version}").json()["warnings"] == [warning]
