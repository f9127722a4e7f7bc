"""Integration parsing benchmark: what turning a foreign document into a gate request costs,
in-process, against the same run's baseline of only parsing the JSON it arrives in.

Usage: .venv/bin/python bench/integrations.py [--iterations 5000]

- admission: cost a Deployment's pod template (the shipped test manifest) from its review;
- infracost: cost an `infracost breakdown --format json` document (the scale_up fixture);
- plan:      cost a Terraform plan's resource_changes (the run-task fixture, 7 changes).

Prints p50/p99/mean per document and the ratio to `json.loads` of the same bytes. Figures, not
asserts; the gate's own decision is measured by bench/gate.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings_test")

import yaml  # noqa: E402

from enforcement.integrations import kubernetes as k8s  # noqa: E402
from enforcement.integrations.infracost import plan_cost  # noqa: E402
from enforcement.integrations.terraform_plan import plan_changes  # noqa: E402
from enforcement.policy.schema import DEFAULT_DOCUMENT  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def _timed(fn, raw: bytes, iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn(raw)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def _row(name: str, samples: list[float], baseline: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return (
        f"{name:<10} p50 {q[49]:8.1f} us  p99 {q[98]:8.1f} us  mean {statistics.fmean(samples):8.1f}"
        f" us  x{statistics.fmean(samples) / statistics.fmean(baseline):5.1f} of json.loads"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args()
    prices = k8s.UnitPrices.from_policy(DEFAULT_DOCUMENT)
    deployment = yaml.safe_load((FIXTURES / "k8s" / "deployment.yaml").read_text())
    review = json.dumps({"request": {"object": deployment}}).encode()
    infracost = (FIXTURES / "infracost" / "scale_up.json").read_bytes()
    plan = (FIXTURES / "terraform" / "plan.json").read_bytes()
    unit = {"aws_instance": "30.37", "aws_eip": "3.65"}
    cases = {
        "admission": (
            review,
            lambda raw: k8s.workload_cost(
                json.loads(raw)["request"]["object"], prices, daemonset_nodes=3
            ),
        ),
        "infracost": (infracost, lambda raw: plan_cost(json.loads(raw))),
        "plan": (plan, lambda raw: plan_changes(json.loads(raw), unit)),
    }
    print(f"python {platform.python_version()} on {platform.machine()}, {args.iterations} each")
    for name, (raw, fn) in cases.items():
        fn(raw)  # warm
        baseline = _timed(json.loads, raw, args.iterations)
        print(_row(name, _timed(fn, raw, args.iterations), baseline), f"({len(raw)} bytes)")


if __name__ == "__main__":
    main()
