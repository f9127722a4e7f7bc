"""POST /api/v1/gate/k8s/admission: AdmissionReview in and out, workloads costed from their
pod templates, UPDATE deltas, DELETE releases, dryRun keeps nothing (issue 16 item 3)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity as k8s_parse_quantity

from controlplane.core.money import parse_usd
from enforcement.integrations import kubernetes as k8s
from enforcement.models import BudgetPeriod, Decision, Reservation
from tests import factories
from tests.api_contracts import assert_problem
from tests.enforcement.helpers import policy_document, publish_policy, row_locked_elsewhere
from tests.integrations.helpers import key_client
from tests.integrations.k8s import GROUPS, as_model, manifest, review, scaled, to_wire

pytestmark = pytest.mark.django_db
URL = "/api/v1/gate/k8s/admission"
PRICES = k8s.UnitPrices(
    cpu_core_hour=Decimal("0.031611"),
    memory_gib_hour=Decimal("0.004237"),
    gpu_hour=Decimal("2.48"),
    hours_per_month=730,
)


def monthly(cpu, memory_gib, gpu=0) -> int:
    hourly = (
        Decimal(cpu) * PRICES.cpu_core_hour
        + Decimal(memory_gib) * PRICES.memory_gib_hour
        + Decimal(gpu) * PRICES.gpu_hour
    )
    return int((hourly * 730 * 1_000_000).to_integral_value(rounding=ROUND_CEILING))


# Per pod: the larger of the containers' sum and the largest init container, plus overhead; a
# container with only limits requests its limits.
COSTS = {
    # app 500m/1Gi + envoy (limits) 250m/512Mi = 750m/1.5Gi; init 1 CPU wins: x3 replicas
    "deployment.yaml": monthly(3, "4.5"),
    "statefulset-gpu.yaml": monthly(8, 32, 2),  # 2 replicas of 4 CPU / 16Gi / 1 GPU
    "daemonset.yaml": monthly("0.4", "0.5"),  # 100m/128Mi x 4 nodes (the policy's count)
    "cronjob.yaml": monthly(4, 8),  # parallelism 2
    "job.yaml": 42_500_000,  # the tollgate.io/monthly-cost-usd annotation
    "pod.yaml": monthly("0.5", Decimal(184) / 1024),  # 250m/64Mi + overhead 250m/120Mi
}


@pytest.mark.parametrize("name", sorted(COSTS))
def test_workloads_are_costed_from_their_pod_templates(name):
    cost = k8s.workload_cost(manifest(name), PRICES, daemonset_nodes=4)
    assert cost.monthly_micros == COSTS[name]


@settings(max_examples=300, deadline=None)
@given(
    number=st.one_of(
        st.integers(min_value=0, max_value=10**6).map(str),
        st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False).map(str),
    ),
    suffix=st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti", "e3", "E2", "n", "u"]),
)
def test_quantities_parse_as_the_kubernetes_client_parses_them(number, suffix):
    text = number + suffix
    expected = k8s_parse_quantity(text)
    if expected > k8s.MAX_QUANTITY:
        with pytest.raises(k8s.ManifestError):
            k8s.parse_quantity(text)
    else:
        assert k8s.parse_quantity(text) == expected


@pytest.fixture
def cluster(tenant, api_key):
    payments = factories.make_project(tenant, "payments")
    factories.make_project(tenant, "search")
    factories.make_budget(tenant, "1000.00", project=payments, environment="prod")
    publish_policy(
        tenant,
        policy_document(
            kubernetes={
                "namespaces": {
                    "payments-prod": {"project": "payments", "environment": "prod"},
                    "payments-dev": {"project": "payments", "environment": "dev"},
                },
                "daemonset_node_count": 4,
            }
        ),
    )
    return key_client(api_key[1])


def _admit(client, body, query=""):
    response = client.post(URL + query, body, format="json")
    assert response.status_code == 200, response.content[:500]
    answer = response.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == body["request"]["uid"]
    assert "patch" not in answer["response"] and "patchType" not in answer["response"]
    if answer["response"]["allowed"]:
        assert "status" not in answer["response"]
    else:
        status = as_model(answer["response"]["status"], "Status")  # a valid metav1.Status
        assert status.code >= 400 and status.message
    for warning in answer["response"].get("warnings", []):
        assert len(warning) <= 120
    return answer["response"]


def test_create_reserves_the_monthly_cost_of_the_template(cluster):
    body = review("CREATE", manifest("deployment.yaml"))
    answer = _admit(cluster, body)
    assert answer["allowed"] is True
    decision = Decision.objects.get(pk=answer["auditAnnotations"]["decision"])
    assert decision.source == "kubernetes"
    assert decision.idempotency_key == f"k8s:{body['request']['uid']}"
    assert decision.project.slug == "payments" and decision.environment == "prod"
    assert decision.request["monthly_delta_usd"] == answer["auditAnnotations"]["monthly-cost-usd"]
    assert decision.request["resource"]["id"] == "Deployment/payments-prod/checkout"
    assert decision.request["requester"] == "alice@example.com"
    assert Reservation.objects.get(decision=decision).state == "pending"
    again = _admit(cluster, body)  # the API server retries the same review: a replay
    assert again["auditAnnotations"]["decision"] == decision.pk
    assert Decision.objects.count() == 1


def test_update_charges_only_the_delta_and_a_scale_down_reserves_nothing(cluster):
    three = manifest("deployment.yaml")
    answer = _admit(cluster, review("UPDATE", scaled(three, 5), three))
    assert answer["allowed"] is True
    two_more = COSTS["deployment.yaml"] * 2 // 3
    decision = Decision.objects.get(pk=answer["auditAnnotations"]["decision"])
    assert abs(parse_usd(decision.request["monthly_delta_usd"]) - two_more) <= 1
    down = _admit(cluster, review("UPDATE", scaled(three, 1), three))
    assert down["allowed"] is True and "decision" not in down["auditAnnotations"]
    assert down["auditAnnotations"]["monthly-delta-usd"].startswith("-")
    assert Decision.objects.count() == 1


def test_delete_releases_the_objects_pending_reservations(cluster):
    deployment = manifest("deployment.yaml")
    created = _admit(cluster, review("CREATE", deployment))
    reservation = Reservation.objects.get(decision_id=created["auditAnnotations"]["decision"])
    period = BudgetPeriod.objects.get(budget__environment="prod")
    assert period.reserved_micros == reservation.amount_micros
    dry = _admit(cluster, review("DELETE", None, deployment, dry_run=True))
    assert dry["allowed"] is True
    reservation.refresh_from_db()
    assert reservation.state == "pending"
    deleted = _admit(cluster, review("DELETE", None, deployment))
    assert deleted["allowed"] is True and deleted["auditAnnotations"]["released"] == reservation.pk
    reservation.refresh_from_db()
    period.refresh_from_db()
    assert reservation.state == "released" and period.reserved_micros == 0


def test_a_dry_run_decides_and_reserves_nothing(cluster):
    answer = _admit(cluster, review("CREATE", manifest("deployment.yaml"), dry_run=True))
    assert answer["allowed"] is True and answer["auditAnnotations"]["outcome"] == "ALLOW"
    assert not Decision.objects.exists() and not Reservation.objects.exists()
    over = scaled(manifest("deployment.yaml"), 300)
    denied = _admit(cluster, review("CREATE", over, dry_run=True))
    assert denied["allowed"] is False and denied["status"]["code"] == 403
    assert not Decision.objects.exists()


def test_over_budget_is_denied_with_the_reason(cluster):
    answer = _admit(cluster, review("CREATE", scaled(manifest("deployment.yaml"), 300)))
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 403 and "does not fit" in answer["status"]["message"]
    assert answer["auditAnnotations"]["reason-code"] == "BUDGET_EXCEEDED"
    assert not Reservation.objects.exists()


def test_soft_mode_allows_with_a_short_warning(tenant, cluster):
    from tests.enforcement.helpers import set_gate_settings

    set_gate_settings(
        tenant,
        modes={
            "*": {"prod": "hard", "nonprod": "hard"},
            "kubernetes": {"prod": "soft", "nonprod": "soft"},
        },
    )
    answer = _admit(cluster, review("CREATE", scaled(manifest("deployment.yaml"), 300)))
    assert answer["allowed"] is True
    assert answer["warnings"] and answer["warnings"][0].startswith("Tollgate (soft mode)")


def test_annotations_choose_the_project_and_may_set_the_cost(cluster):
    gpu = _admit(cluster, review("CREATE", manifest("statefulset-gpu.yaml")))
    decision = Decision.objects.get(pk=gpu["auditAnnotations"]["decision"])
    assert (decision.project.slug, decision.environment) == ("search", "prod")
    assert decision.request["resource"]["attributes"]["gpus"] == "2"
    job = _admit(cluster, review("CREATE", manifest("job.yaml")))
    assert job["auditAnnotations"]["monthly-cost-usd"] == "42.50"


def test_an_unmapped_namespace_is_refused_with_how_to_map_it(cluster):
    pod = manifest("pod.yaml")
    pod["metadata"]["namespace"] = "unmapped"
    answer = _admit(cluster, review("CREATE", pod))
    assert answer["allowed"] is False and answer["status"]["code"] == 400
    assert "VALIDATION_FAILED" in answer["status"]["message"]


def test_kinds_that_cost_nothing_are_allowed_without_a_decision(cluster):
    body = review("CREATE", manifest("pod.yaml"))
    body["request"]["kind"] = {"group": "", "version": "v1", "kind": "ConfigMap"}
    body["request"]["object"] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    assert _admit(cluster, body)["allowed"] is True
    assert not Decision.objects.exists()


def test_a_key_bound_to_another_project_is_refused_in_the_review(tenant, cluster):
    search = factories.make_project(tenant, "other")
    _, plaintext = factories.make_api_key(tenant, scopes=["gate:write"], project=search)
    answer = _admit(key_client(plaintext), review("CREATE", manifest("deployment.yaml")))
    assert answer["allowed"] is False and answer["status"]["code"] == 403
    assert answer["auditAnnotations"]["code"] == "KEY_SCOPE_MISMATCH"
    # ... and it cannot release another project's reservations either.
    deployment = manifest("deployment.yaml")
    created = _admit(cluster, review("CREATE", deployment))
    _admit(key_client(plaintext), review("DELETE", None, deployment))
    reservation = Reservation.objects.get(decision_id=created["auditAnnotations"]["decision"])
    assert reservation.state == "pending"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "Pod"}, "kind"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1"}, "apiVersion"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}, "request.uid"),
    ],
)
def test_a_body_that_is_not_a_review_is_a_problem(cluster, body, field):
    problem = assert_problem(
        cluster.post(URL, body, format="json"), 400, "ADMISSION_REVIEW_INVALID"
    )
    assert problem["errors"][0]["field"] == field


def test_an_object_that_cannot_be_costed_is_refused(cluster):
    bad = manifest("deployment.yaml")
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"
    answer = _admit(cluster, review("CREATE", bad))
    assert answer["allowed"] is False and answer["status"]["code"] == 422
    assert "containers[0].resources.requests.cpu" in answer["status"]["message"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("namespace", "allowed"), [("payments-prod", False), ("payments-dev", True)]
)
def test_past_the_deadline_the_environments_fail_mode_answers(tenant, cluster, namespace, allowed):
    """The decision deadline is half the API server's timeout; prod fails closed (503 in the
    review), nonprod open (allowed, with a warning)."""
    payments = factories.make_budget(
        tenant, "1000.00", project=tenant.projects.get(slug="payments"), environment="dev"
    )
    deployment = manifest("deployment.yaml")
    _admit(cluster, review("CREATE", scaled(deployment, 1)))  # the prod period exists
    deployment["metadata"]["namespace"] = namespace
    env = namespace.split("-")[1]
    warm = scaled(deployment, 1)
    warm["metadata"]["name"] = "warm"
    _admit(cluster, review("CREATE", warm))
    period = BudgetPeriod.objects.get(budget__environment=env, budget__project__isnull=False)
    assert payments
    with row_locked_elsewhere("enforcement_budgetperiod", period.pk):
        answer = _admit(cluster, review("CREATE", deployment), query="?timeout=100ms")
    assert answer["allowed"] is allowed
    if allowed:
        assert answer["warnings"][0].startswith("Tollgate fail-open")
    else:
        assert (
            answer["status"]["code"] == 503 and "fail mode is closed" in answer["status"]["message"]
        )


def test_objects_a_controller_owns_are_not_charged_twice(cluster):
    pod = manifest("pod.yaml")
    pod["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "checkout-7d4b9c",
            "uid": "0b6c9a4e-4f0a-4c1e-9f55-5d2e7a1f0c11",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    answer = _admit(cluster, review("CREATE", to_wire(as_model(pod))))
    assert answer["allowed"] is True
    assert answer["auditAnnotations"] == {"costed": "false", "owner": "ReplicaSet/checkout-7d4b9c"}
    assert not Decision.objects.exists()


# --- the webhook configuration we ship ------------------------------------------------------


def test_the_shipped_webhook_configuration_is_valid_and_safe():
    import base64

    import yaml

    from tests.integrations.helpers import FIXTURES

    text = (FIXTURES.parent.parent / "deploy" / "k8s" / "validating-webhook.yaml").read_text()
    config = as_model(yaml.safe_load(text))
    assert config.kind == "ValidatingWebhookConfiguration"
    (hook,) = config.webhooks
    assert hook.admission_review_versions == ["v1"]
    assert hook.side_effects == "NoneOnDryRun"
    assert hook.failure_policy in ("Fail", "Ignore")
    assert 1 <= hook.timeout_seconds <= 30
    (expression,) = hook.namespace_selector.match_expressions
    assert expression.key == "kubernetes.io/metadata.name" and expression.operator == "NotIn"
    assert {"kube-system", "tollgate"} <= set(expression.values)
    assert hook.client_config.service.path == URL
    placeholder = hook.client_config.ca_bundle
    assert base64.b64decode(placeholder) == b"TOLLGATE-CA-BUNDLE-PLACEHOLDER"
    assert f'sed "s|{placeholder}|' in text.split("apiVersion:")[0]  # how to replace it
    real = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    filled = yaml.safe_load(text.replace(placeholder, real.decode()))
    assert as_model(filled).webhooks[0].client_config.ca_bundle == real.decode()
    covered = {(g, r) for rule in hook.rules for g in rule.api_groups for r in rule.resources}
    for kind in k8s.WORKLOAD_KINDS:
        if kind in GROUPS:
            group, _, resource = GROUPS[kind]
            assert (group, resource) in covered, kind
    assert all(set(rule.operations) == {"CREATE", "UPDATE", "DELETE"} for rule in hook.rules)


def test_approval_then_apply_again_with_the_token_annotation(tenant, cluster):
    from tests.enforcement.approval_helpers import approve

    factories.require_approval_above(tenant, "10.00")
    deployment = manifest("deployment.yaml")
    pending = _admit(cluster, review("CREATE", deployment))
    assert pending["allowed"] is False and pending["auditAnnotations"]["outcome"] == (
        "REQUIRE_APPROVAL"
    )
    assert "/api/v1/approvals/apr_" in pending["status"]["message"]
    approval_id = pending["status"]["message"].split("/api/v1/approvals/")[1].split()[0]
    owner = factories.make_member(tenant, "olga", "owner")
    token = approve(factories.user_client(tenant, owner), approval_id.rstrip(",.")).json()["token"]
    deployment["metadata"].setdefault("annotations", {})[k8s.ANNOTATION_TOKEN] = token
    resumed = _admit(cluster, review("CREATE", deployment))
    assert resumed["allowed"] is True, resumed
    assert resumed["auditAnnotations"]["outcome"] == "ALLOW"
