"""Schemathesis over the whole OpenAPI document, in-process against the WSGI app (issue 11, item 8).

All phases (examples, coverage, fuzzing, stateful), checks ``not_a_server_error`` and
``response_schema_conformance``, every call bounded in time, 0 failures. The fuzzer has its own
API key with every scope; calls that would revoke that very key are not sent (it must survive
the run: after every call the key is checked to be unrevoked).

The document describes the SCIM 2.0 endpoints too (``/scim/v2/``, security scheme
``ScimToken``): the fuzzer calls them with the tenant's SCIM token, as an identity provider
would. Outside the document, and so outside this run: the dashboard and the admin (HTML forms
behind a session), the payment webhooks (signed provider events; tests/billing), the probes.
"""

from __future__ import annotations

from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from billing.pricing import lookup as price_lookup
from billing.services import tenant_plan_set
from billing.services.prices import price_catalog_import
from controlplane.identity.services.tokens import scim_token_issue
from controlplane.wsgi import application
from tests import factories
from tests.fakes.provider_server import FakeProviderServer
from tests.hardening.timebound import time_bound

pytestmark = pytest.mark.django_db(transaction=True)
LLM_PRICES = Path(__file__).resolve().parents[1] / "fixtures" / "llm" / "litellm_prices_subset.json"
CALL_BOUND_SECONDS = 15  # per call, wall clock: a hang fails the run instead of stalling CI
MAX_EXAMPLES = 12
STATEFUL_SCENARIOS = 25

CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": True, "max-steps": 12},
    },
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
    },
    # RFC 7644 section 3.7: a service provider that does not support bulk answers POST /Bulk
    # with 501 (ServiceProviderConfig says bulk.supported false). The one 5xx that is an
    # answer, not a failure.
    "operations": [
        {
            "include-path": "/scim/v2/Bulk/",
            "checks": {
                "not_a_server_error": {"expected-statuses": ["1XX", "2XX", "3XX", "4XX", 501]}
            },
        }
    ],
    "request-timeout": CALL_BOUND_SECONDS,
    "suppress-health-check": ["all"],
}


@pytest.fixture
def provider():
    with FakeProviderServer() as server:
        yield server


def _world(slug: str) -> dict:
    """A tenant with something to find: project, budget, credits; the fuzzer's own key.

    On the plan with every feature, so the fuzzer reaches every endpoint's own checks rather
    than the entitlement refusal in front of them."""
    tenant = factories.make_tenant(slug)
    tenant_plan_set(tenant=tenant, plan="enterprise")
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    factories.make_grant(tenant, "50.00")
    key, plaintext = factories.make_api_key(tenant)
    _, scim_token = scim_token_issue(tenant=tenant, name="fuzzer")
    return {
        "key": key,
        "auth": {"Authorization": f"Bearer {plaintext}"},
        "scim": {"Authorization": f"Bearer {scim_token}"},
    }


def _headers(case, world) -> dict:
    """The credential the operation's security scheme names: SCIM paths take the tenant's SCIM
    token (the identity provider's), everything else the API key."""
    return world["scim"] if case.path.startswith("/scim/") else world["auth"]


@pytest.fixture
def fuzz_world(transactional_db, settings, provider):
    # BYOK keys are checked against the local fake OpenAI/Anthropic server (no network here; a
    # real provider being unreachable is a legitimate 503 the fuzzer would count as a failure).
    settings.BYOK_PROVIDER_BASE_URLS = {name: provider.base_url for name in ("openai", "anthropic")}
    # The LLM gateway prices calls from the catalog: load one, as an operator would.
    price_catalog_import(text=LLM_PRICES.read_bytes(), source="fuzz")
    price_lookup.clear()
    return _world("fuzz")


# Loaded at collection, from the app itself (the schema view needs no database).
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/", application, config=SchemathesisConfig.from_dict(CONFIG)
)


def _revokes_own_key(case, key) -> bool:
    return case.path.startswith("/api/v1/api-keys/") and key.id in str(case.path_parameters)


def _assert_key_survives(case, key) -> None:
    """The fuzzer's own key is still usable after the call (no revocation, by any path)."""
    key.refresh_from_db()
    assert key.revoked_at is None, f"{case.method} {case.formatted_path} revoked the fuzzer's key"


def _call(case, world):
    if _revokes_own_key(case, world["key"]):
        return None
    with time_bound(CALL_BOUND_SECONDS, f"{case.method} {case.formatted_path}"):
        response = case.call(headers=_headers(case, world))
    _assert_key_survives(case, world["key"])
    return response


@schema.parametrize()
def test_every_operation(case, fuzz_world):
    response = _call(case, fuzz_world)
    if response is not None:
        case.validate_response(response)


def test_stateful_sequences(fuzz_world):
    scenarios = iter(range(1_000_000))

    class Workflow(schema.as_state_machine()):
        # Every scenario starts from the same state, in a tenant of its own: the links a
        # scenario may follow depend on what the server answered, and answers that depended on
        # earlier scenarios' writes would make Hypothesis's replays generate differently.
        def setup(self):
            self.world = _world(f"fuzz-{next(scenarios)}")

        def get_call_kwargs(self, case):
            return {"headers": _headers(case, self.world)}

        def call(self, case, **kwargs):
            if _revokes_own_key(case, self.world["key"]):
                raise hypothesis.reject()
            with time_bound(CALL_BOUND_SECONDS, f"{case.method} {case.formatted_path}"):
                response = case.call(**kwargs)
            _assert_key_survives(case, self.world["key"])
            return response

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            stateful_step_count=12,
        )
    )
