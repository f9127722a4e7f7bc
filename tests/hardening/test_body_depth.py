"""Deeply nested JSON and YAML bodies are 400 BODY_TOO_DEEP on every endpoint that takes a body,
decided by the parser before any work (the issue's RecursionError 500s)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from drf_spectacular.generators import SchemaGenerator

from controlplane.core.bodies import check_json_depth, check_yaml_depth
from controlplane.core.errors import TollgateError
from tests.api_contracts import assert_problem

pytestmark = pytest.mark.django_db


def _body_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the OpenAPI document that accepts a request body."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch") and "requestBody" in operation:
                found.append((method, path.replace("{id}", "x").replace("{version}", "1")))
    return sorted(found)


OPERATIONS = _body_operations()


def _deep_json(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def test_every_body_operation_is_covered():
    paths = {path for _, path in OPERATIONS}
    for expected in (
        "/api/v1/gate/decisions",
        "/api/v1/budgets",
        "/api/v1/policies",
        "/api/v1/api-keys",
        "/api/v1/projects",
        "/api/v1/byok/credentials",
        "/api/v1/reconciliations",
    ):
        assert expected in paths, sorted(paths)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.parametrize("levels", [33, 100_000])
def test_json_deeper_than_the_limit_is_400_on_every_endpoint(client_a, method, path, levels):
    response = getattr(client_a, method)(
        path, data=_deep_json(levels), content_type="application/json"
    )
    problem = assert_problem(response, 400, "BODY_TOO_DEEP")
    assert "32" in problem["detail"] and problem["remediation"]


def test_arrays_count_too_and_strings_do_not(client_a):
    deep = "[" * 40 + "]" * 40
    response = client_a.post("/api/v1/budgets", data=deep, content_type="application/json")
    assert_problem(response, 400, "BODY_TOO_DEEP")
    # Brackets inside a string are text, not nesting: this body is rejected for its fields.
    flat = json.dumps({"limit_usd": "[" * 100 + "{" * 100})
    response = client_a.post("/api/v1/budgets", data=flat, content_type="application/json")
    assert response.json()["code"] == "VALIDATION_FAILED"


def test_nesting_at_the_limit_is_parsed(client_a):
    response = client_a.post(
        "/api/v1/budgets", data=_deep_json(32), content_type="application/json"
    )
    assert response.json()["code"] == "VALIDATION_FAILED"  # parsed, then refused for its fields


@pytest.mark.parametrize(
    "text",
    [
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 60)),
        "[" * 5000 + "]" * 5000,
        "{a: " * 40 + "1" + "}" * 40,
        "- " * 50 + "x",
    ],
    ids=["block", "flow-5000", "flow-mapping", "inline-sequences"],
)
def test_deep_yaml_policy_is_400_body_too_deep(client_a, text):
    response = client_a.post("/api/v1/policies", data=text, content_type="application/yaml")
    assert_problem(response, 400, "BODY_TOO_DEEP")


def test_deep_json_text_policy_is_400_body_too_deep(client_a):
    response = client_a.post(
        "/api/v1/policies", data=_deep_json(50), content_type="application/json"
    )
    assert_problem(response, 400, "BODY_TOO_DEEP")


def _yesterday() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).isoformat()


def test_deep_yaml_string_in_simulate_is_400(client_a):
    response = client_a.post(
        "/api/v1/policies/simulate",
        {"document": "[" * 200 + "]" * 200, "since": _yesterday()},
        format="json",
    )
    assert_problem(response, 400, "BODY_TOO_DEEP")


def test_depth_checks_are_exact():
    check_json_depth(_deep_json(32), 32)
    check_json_depth(b'{"a": "' + b"[" * 1000 + b'"}', 32)
    check_json_depth('{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 32)
    with pytest.raises(TollgateError):
        check_json_depth(_deep_json(33), 32)
    check_yaml_depth("a:\n  b:\n    c: 1\n", 3)
    with pytest.raises(TollgateError):
        check_yaml_depth("a:\n  b:\n    c: 1\n", 2)


# Outside the OpenAPI document: SCIM (its own tokens), payment webhooks (signatures), the
# dashboard and the admin (sessions). The depth check runs before any of them authenticates.
OTHER_BODY_ROUTES = [
    "/scim/v2/Users",
    "/scim/v2/Groups",
    "/scim/v2/Bulk",
    "/webhooks/billing/stripe",
    "/webhooks/billing/standard",
    "/dashboard/policies/",
    "/admin/login/",
]


@pytest.mark.parametrize("path", OTHER_BODY_ROUTES)
@pytest.mark.parametrize("media", ["application/json", "application/scim+json"])
def test_json_deeper_than_the_limit_is_400_outside_the_api_too(client, path, media):
    response = client.post(path, data=_deep_json(100_000), content_type=media)
    assert response.status_code == 400, (path, response.status_code, response.content[:300])
    if path.startswith("/scim/"):  # SCIM clients get SCIM Error bodies
        body = response.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], body
        assert "32" in body["detail"], body
    else:
        assert "32" in assert_problem(response, 400, "BODY_TOO_DEEP")["detail"]
