"""The route walks of issue 17, for the proxy routes (served outside Django's URLconf, so the
generated walks in tests/core/test_route_walks.py cannot see them): scope, key binding,
body depth, error registry. The proxy answers in the provider's error shape, not
problem+json (docs/decisions/0014-llm-proxy-provider-error-shapes.md), so these walks read
``error.code`` in that shape."""

from __future__ import annotations

import json

import httpx
import pytest

from controlplane.core.errors import registered_codes
from controlplane.tenancy.scopes import all_scopes
from enforcement.llm.admission import ROUTES
from enforcement.models import LlmCall
from tests import factories

BODIES = {
    "/v1/chat/completions": {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 5,
    },
    "/v1/embeddings": {"model": "text-embedding-3-small", "input": "x"},
    "/v1/messages": {
        "model": "claude-sonnet-4-5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
    },
}
PATHS = sorted(ROUTES)


def _code(route_path: str, response: httpx.Response) -> str:
    body = response.json()
    error = body["error"]
    if ROUTES[route_path].format == "anthropic":
        assert body["type"] == "error" and error["type"]
    else:
        assert error["type"] and "message" in error
    assert error["message"] and error["remediation"], body
    return error["code"]


def _post(proxy, path, key, body=None, **headers):
    content = body if isinstance(body, bytes) else json.dumps(body or BODIES[path]).encode()
    return httpx.post(
        proxy.url + path,
        content=content,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json", **headers},
        timeout=30,
    )


def test_the_walk_knows_every_proxy_route():
    assert set(BODIES) == set(ROUTES)


@pytest.mark.parametrize("path", PATHS)
def test_every_proxy_route_requires_the_llm_scope(proxy, llm_tenant, path):
    _, without = factories.make_api_key(
        llm_tenant, scopes=[s for s in all_scopes() if s != "llm:write"]
    )
    response = _post(proxy, path, without)
    assert response.status_code == 403 and _code(path, response) == "SCOPE_MISSING"
    _, only = factories.make_api_key(llm_tenant, scopes=["llm:write"])
    scope = {"tollgate-project": "payments", "tollgate-environment": "dev"}  # an unbound key
    response = _post(proxy, path, only, **scope)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("path", PATHS)
def test_a_bound_key_is_confined_to_its_binding(proxy, llm_tenant, path):
    factories.make_project(llm_tenant, "search")
    # llm_tenant.plaintext is bound to payments/dev.
    for project, environment in (("search", "dev"), ("payments", "prod")):
        response = _post(
            proxy,
            path,
            llm_tenant.plaintext,
            **{"tollgate-project": project, "tollgate-environment": environment},
        )
        assert response.status_code == 403 and _code(path, response) == "KEY_SCOPE_MISMATCH"
    assert _post(proxy, path, llm_tenant.plaintext).status_code == 200
    assert LlmCall.objects.get().reservation.decision.project.slug == "payments"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("levels", [33, 100_000])
def test_a_body_deeper_than_the_limit_is_400_body_too_deep(proxy, llm_tenant, path, levels):
    deep = ('{"a":' * levels + "1" + "}" * levels).encode()
    response = _post(proxy, path, llm_tenant.plaintext, deep)
    assert response.status_code == 400 and _code(path, response) == "BODY_TOO_DEEP"


@pytest.mark.parametrize("path", PATHS)
def test_every_refusal_code_is_registered(proxy, llm_tenant, path, settings):
    codes = set()
    cases = [
        ("tg_bad_key", BODIES[path]),
        (llm_tenant.plaintext, {"model": "no-such-model", "max_tokens": 5, "messages": []}),
        (llm_tenant.plaintext, {"messages": []}),
        (llm_tenant.plaintext, b"not json"),
    ]
    for key, body in cases:
        response = _post(proxy, path, key, body)
        assert 400 <= response.status_code < 500, response.content
        codes.add(_code(path, response))
    assert codes <= set(registered_codes()), codes - set(registered_codes())
    get = httpx.get(proxy.url + path, timeout=30)
    assert get.status_code == 405 and _code(path, get) == "METHOD_NOT_ALLOWED"


def test_a_suspended_tenant_is_refused_by_the_request_gates(proxy, llm_tenant):
    from controlplane.tenancy.services import tenant_set_lifecycle

    tenant_set_lifecycle(tenant=llm_tenant, lifecycle="suspended")
    response = _post(proxy, "/v1/chat/completions", llm_tenant.plaintext)
    assert response.status_code == 403
    assert _code("/v1/chat/completions", response) == "TENANT_SUSPENDED"


def test_without_the_entitlement_the_proxy_refuses(proxy, llm_tenant, fake_upstream):
    from billing.services.plans import tenant_plan_set

    tenant_plan_set(tenant=llm_tenant, plan="growth")
    response = _post(proxy, "/v1/messages", llm_tenant.plaintext)
    assert response.status_code == 403
    body = response.json()
    assert body["error"]["type"] == "permission_error"
    assert body["error"]["code"] == "FEATURE_NOT_ENTITLED"
    assert body["error"]["feature"] == "llm_gateway"
    assert fake_upstream.requests == []
