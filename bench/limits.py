"""What the issue 17 limits cost on the gate's hot path, in-process, against same-run baselines.

Usage: .venv/bin/python bench/limits.py [--repeat 20000]

Figures (microseconds per call, median of --repeat calls), each next to the work it guards:

1. body parsing: DRF's JSON parser alone vs ``StrictJSONParser`` (the same + one walk refusing
   lone surrogates, infinite numbers and integers beyond 64 bits), on a usual gate body and on
   the largest body the limits admit;
2. the free-form checks (attributes, labels) vs the fast body check they are part of, and vs
   the fingerprint (canonical JSON + sha256) the gate computes anyway;
3. the padded body of the issue (~2 MB, 60k attribute keys): what the gate used to do with it
   (parse + fingerprint) vs now (refused on Content-Length before it is read);
4. policy evaluation: the rule loop without vs with the run-time guard (a 50-rule policy), and
   the worst rule the static bounds admit (max-size request data), with its estimated cost;
5. the static analysis itself (validation time, not the hot path).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings_test")

import django

django.setup()

import cel  # noqa: E402
from rest_framework.parsers import JSONParser  # noqa: E402

from controlplane.core.canonical import fingerprint  # noqa: E402
from controlplane.core.jsonlimits import (  # noqa: E402
    ATTRIBUTES_LIMITS,
    free_form_problem,
    labels_problem,
)
from controlplane.core.parsers import StrictJSONParser  # noqa: E402
from enforcement.api.fastparse import gate_body_fast  # noqa: E402
from enforcement.policy import evaluate as evaluate_module  # noqa: E402
from enforcement.policy.celcost import analyse  # noqa: E402
from enforcement.policy.compiled import compile_policy  # noqa: E402
from enforcement.policy.document import validate_document  # noqa: E402
from enforcement.policy.schema import DEFAULT_DOCUMENT  # noqa: E402

USUAL = {
    "source": "terraform",
    "project": "payments",
    "environment": "prod",
    "action": "apply",
    "resource": {"type": "aws_instance", "id": "web", "attributes": {"n": 2, "size": "m5.large"}},
    "estimated_cost_usd": "12.50",
    "labels": {"team": "core", "cost-center": "cc-42"},
    "requester": "ci@example.com",
}
LARGEST = {
    **USUAL,
    "resource": {
        "type": "aws_instance",
        "id": "web",
        "attributes": {f"k{i:03d}": "v" * 40 for i in range(250)},
    },
    "labels": {f"label-{i}": "value" for i in range(64)},
}


def median_us(fn, repeat: int) -> float:
    for _ in range(min(repeat // 10, 500)):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples)


def row(name: str, value: float, baseline: float | None = None, unit: str = "us") -> None:
    extra = f"   ({value / baseline * 100:5.1f} % of the baseline)" if baseline else ""
    print(f"  {name:<62}{value:>10.2f} {unit}{extra}")


def parsing(repeat: int) -> None:
    plain, strict = JSONParser(), StrictJSONParser()
    for label, body in (("usual body", USUAL), ("largest admitted body", LARGEST)):
        raw = json.dumps(body).encode()
        base = median_us(lambda raw=raw: plain.parse(io.BytesIO(raw)), repeat)
        mine = median_us(lambda raw=raw: strict.parse(io.BytesIO(raw)), repeat)
        print(f"1. parsing, {label} ({len(raw)} bytes)")
        row("DRF JSONParser (baseline)", base)
        row("StrictJSONParser (+ unrepresentable-value walk)", mine, base)
        row("  the walk alone", mine - base, base)


def free_form(repeat: int) -> None:
    for label, body in (("usual body", USUAL), ("largest admitted body", LARGEST)):
        attributes, labels = body["resource"]["attributes"], body["labels"]
        checks = median_us(
            lambda a=attributes, lb=labels: (
                free_form_problem(a, ATTRIBUTES_LIMITS),
                labels_problem(lb),
            ),
            repeat,
        )
        fast = median_us(lambda b=body: gate_body_fast(b), repeat)
        fp = median_us(lambda b=body: fingerprint(b), repeat)
        print(f"2. free-form limits, {label}")
        row("fingerprint the gate computes anyway (baseline)", fp)
        row("fast body check, limits included", fast, fp)
        row("  attribute + label limits alone", checks, fp)


def padded(repeat: int) -> None:
    body = {
        **USUAL,
        "resource": {"attributes": {f"key-{i:05d}": "x" * 20 for i in range(60_000)}},
    }
    raw = json.dumps(body).encode()
    plain = JSONParser()
    old = median_us(lambda: fingerprint(plain.parse(io.BytesIO(raw))), max(repeat // 1000, 5))
    print(f"3. the padded body of issue 17 ({len(raw) / 1e6:.1f} MB, 60k attribute keys)")
    row("before: parsed and fingerprinted inside the decision deadline", old / 1000, unit="ms")
    row("now: 413 on Content-Length (64 KiB gate limit), never read", 0.0, unit="ms")


def guard(repeat: int) -> None:
    rules = [
        {
            "id": f"r{i}",
            "when": f"request.amount_usd > {i + 1000}.0 && request.labels.team == 'core'",
            "then": "deny",
        }
        for i in range(50)
    ]
    document = validate_document({**DEFAULT_DOCUMENT, "rules": rules}).document
    policy = compile_policy(document)
    variables = {
        "request": {"amount_usd": 12.5, "labels": {"team": "core"}},
        "context": {},
        "budget": {},
    }

    def unguarded():  # the loop as it was: no timer
        shared = cel.Context(variables)
        for rule in policy.rules:
            rule.program.execute(shared)

    base = median_us(unguarded, repeat // 10)
    mine = median_us(lambda: evaluate_module.match_rules(policy, variables), repeat // 10)
    print("4. policy evaluation, 50 rules, none matching")
    row("rule loop without the guard (baseline)", base)
    row("match_rules with the run-time guard", mine, base)
    worst = (
        "request.resource.attributes.items.all(x, !["
        + ",".join(str(i) for i in range(20))
        + "].exists(y, y == x + 1000))"
    )
    report = analyse(worst)
    data = {
        "request": {"resource": {"attributes": {"items": list(range(256))}}},
        "context": {},
        "budget": {},
    }
    program, ctx = cel.compile(worst), cel.Context(data)
    took = median_us(lambda: program.execute(ctx), 50)
    row(
        f"a near-limit admissible rule, max data (cost {report.cost} units)", took / 1000, unit="ms"
    )
    print(f"  -> {took / report.cost * 1000:.1f} ns per cost unit; per-rule guard budget 25 ms")
    analysis = median_us(lambda: analyse(worst), repeat // 10)
    print("5. validation")
    row("static analysis of that rule (celcost.analyse)", analysis)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20000)
    args = parser.parse_args()
    print(f"issue 17 limits, in-process, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    parsing(args.repeat)
    free_form(args.repeat)
    padded(args.repeat)
    guard(args.repeat)


if __name__ == "__main__":
    main()
