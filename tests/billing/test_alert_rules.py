"""deploy/prometheus/alerts.yaml: promtool checks it (and runs its unit tests) where installed;
either way every rule is well formed, uses metrics the code exports, and has a runbook."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RUNBOOKS = ROOT / "docs" / "operations.md"
REQUIRED = {
    # the four request-gate alerts of the production-readiness audit
    "TollgateGateLatencyHigh",
    "TollgateGateProviderErrors",
    "TollgateGateProviderCircuitOpen",
    "TollgateGateFailClosed",
    # and the others
    "TollgateGateFailOpen",
    "TollgateOutboxDeadLetters",
    "TollgateLedgerVerificationFailed",
    "TollgateByokBreakerOpen",
}
PROMQL_WORDS = {
    "sum",
    "by",
    "rate",
    "increase",
    "histogram_quantile",
    "max",
    "le",
    "gate",
    "provider",
    "result",
    "humanize",
    "humanizeDuration",
}


def _rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _anchors() -> set[str]:
    headings = re.findall(r"^#{2,4} (.+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-") for h in headings}


def _exported_metric_names() -> set[str]:
    import billing.gates.metrics
    import billing.services.dunning  # noqa: F401
    import byok.metrics  # noqa: F401
    import controlplane.audit.outbox
    import controlplane.audit.verify  # noqa: F401

    names = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for metric in REGISTRY.collect():
        names.add(metric.name)
        names.update(metric.name + suffix for suffix in suffixes.get(metric.type, ()))
    return names


def test_every_required_alert_exists_with_severity_summary_and_a_runbook():
    rules = _rules()
    names = {rule["alert"] for rule in rules}
    assert names >= REQUIRED, REQUIRED - names
    anchors = _anchors()
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        for key in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(key), (rule["alert"], key)
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert path == "docs/operations.md" and anchor == rule["alert"].lower()
        assert anchor in anchors, f"no runbook heading for {rule['alert']} in docs/operations.md"


def test_every_metric_an_alert_reads_is_exported_by_the_code():
    exported = _exported_metric_names()
    for rule in _rules():
        expr = re.sub(r'"[^"]*"', "", rule["expr"])  # label values are not metrics
        identifiers = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", expr))
        metrics = {i for i in identifiers if i not in PROMQL_WORDS and "_" in i}
        for name in metrics:
            assert name in exported, (
                rule["alert"],
                name,
            )


@pytest.mark.skipif(
    shutil.which("promtool") is None and not os.environ.get("REQUIRE_SERVICES"),
    reason="promtool not installed (CI installs Debian's prometheus package for it)",
)
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    check = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yaml"],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr
