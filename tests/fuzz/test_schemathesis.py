"""Schemathesis over the whole OpenAPI document, in-process against the WSGI app (issue 11, item 8).

All phases (examples, coverage, fuzzing, stateful), checks ``not_a_server_error`` and
``response_schema_conformance``, every call bounded in time, 0 failures. The fuzzer has its own
API key with every scope; calls that would revoke that very key are not sent (it must survive
the run, which the last test proves).
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from billing.services import tenant_plan_set
from controlplane.wsgi import application
from tests import factories
from tests.hardening.timebound import time_bound

pytestmark = pytest.mark.django_db(transaction=True)
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
    "request-timeout": CALL_BOUND_SECONDS,
    "suppress-health-check": ["all"],
}


@pytest.fixture
def fuzz_world(transactional_db):
    """A tenant with something to find: project, budget, credits, a decision; the fuzzer's key.

    On the plan with every feature, so the fuzzer reaches every endpoint's own checks rather
    than the entitlement refusal in front of them."""
    tenant = factories.make_tenant("fuzz")
    tenant_plan_set(tenant=tenant, plan="enterprise")
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    factories.make_grant(tenant, "50.00")
    key, plaintext = factories.make_api_key(tenant)
    return {"key": key, "auth": {"Authorization": f"Bearer {plaintext}"}}


# Loaded at collection, from the app itself (the schema view needs no database).
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/", application, config=SchemathesisConfig.from_dict(CONFIG)
)


def _revokes_own_key(case, key) -> bool:
    return case.path.startswith("/api/v1/api-keys/") and key.id in str(case.path_parameters)


def _call(case, world):
    if _revokes_own_key(case, world["key"]):
        return None
    with time_bound(CALL_BOUND_SECONDS, f"{case.method} {case.formatted_path}"):
        return case.call(headers=world["auth"])


@schema.parametrize()
def test_every_operation(case, fuzz_world):
    response = _call(case, fuzz_world)
    if response is not None:
        case.validate_response(response)


def test_stateful_sequences(fuzz_world):
    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": fuzz_world["auth"]}

        def call(self, case, **kwargs):
            if _revokes_own_key(case, fuzz_world["key"]):
                raise hypothesis.reject()
            with time_bound(CALL_BOUND_SECONDS, f"{case.method} {case.formatted_path}"):
                return case.call(**kwargs)

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            stateful_step_count=12,
        )
    )


def test_the_fuzzers_key_survives(fuzz_world, client):
    response = client.get("/api/v1/tenant", headers=fuzz_world["auth"])
    assert response.status_code == 200
