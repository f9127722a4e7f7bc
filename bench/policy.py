"""Policy evaluation benchmark: a 50-rule policy vs a 1-rule policy, in-process, same run.

Usage: .venv/bin/python bench/policy.py [--decisions 20000] [--rules 50]

Every rule is written so that none matches (the worst case: all of them are evaluated), then the
budget waterfall runs as on the gate's hot path. Prints p50/p99/mean per decision and the ratio
of the two policies. Target: 50 rules under 1 ms p99.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings_test")

from enforcement import engine
from enforcement.policy.compiled import compile_policy
from enforcement.policy.document import validate_document
from enforcement.policy.evaluate import evaluate
from enforcement.policy.schema import DEFAULT_DOCUMENT

TEMPLATES = [
    "request.env_class == 'prod' && request.amount_usd > {n}000.0",
    "'team' in request.labels && request.labels.team == 'team-{n}'",
    "request.source == 'source-{n}' && request.amount_usd > 1.0",
    "context.risk_score > {n}.5 && budget.exists",
    "budget.exists && budget.utilization > 1.{n} && request.action.startsWith('scale')",
    "request.project == 'project-{n}' || request.requester == 'bot-{n}'",
]


def make_policy(rule_count: int):
    rules = [
        {
            "id": f"rule-{i}",
            "when": TEMPLATES[i % len(TEMPLATES)].format(n=i + 10),
            "then": ["deny", "require_approval", "allow"][i % 3],
        }
        for i in range(rule_count)
    ]
    result = validate_document({**DEFAULT_DOCUMENT, "rules": rules})
    assert result.ok, result.errors
    return compile_policy(result.document)


def run(policy, decisions: int) -> list[float]:
    snapshot = engine.Snapshot(
        budgets=(
            engine.BudgetSnap("bp_tenant", 10_000_000_000, 2_000_000_000, 3_000_000_000),
            engine.BudgetSnap("bp_project", 2_000_000_000, 500_000_000, 700_000_000),
        ),
        grants=(
            engine.GrantSnap(
                "gr_1", "reserved", 250_000_000, 0, None, datetime(2026, 11, 1, tzinfo=UTC)
            ),
        ),
    )
    record = {"action": "compute.scale_up", "labels": {"team": "payments"}, "requester": "ci"}
    context = {
        "mtd_spend_usd": "700.00",
        "burn_rate_daily_usd": "31.00",
        "forecast_eom_usd": "1400.00",
        "risk_score": 0.7,
        "risk_class": "low",
    }
    samples = []
    for i in range(decisions):
        request = engine.DecisionRequest(
            amount=1_000_000 + (i % 5000) * 10_000,
            source="terraform",
            environment="prod",
            env_class=engine.EnvClass.PROD,
            project="payments",
        )
        started = time.perf_counter_ns()
        result = evaluate(
            policy, request=request, record=record, snapshot=snapshot, context=context
        )
        samples.append((time.perf_counter_ns() - started) / 1000)
        assert result.outcome.rule_id is None  # worst case: no rule matched, all evaluated
    return samples


def summarise(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.50), "p99": pick(0.99), "mean": statistics.fmean(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=20000)
    parser.add_argument("--rules", type=int, default=50)
    args = parser.parse_args()
    big, small = make_policy(args.rules), make_policy(1)
    run(big, 500), run(small, 500)  # warm-up
    results = {}
    for name, policy in ((f"{args.rules} rules", big), ("1 rule", small)):
        results[name] = summarise(run(policy, args.decisions))
    print(
        f"policy evaluation, in-process, {args.decisions} decisions each, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"{'policy':<12}{'p50 us':>10}{'p99 us':>10}{'mean us':>10}")
    for name, figures in results.items():
        print(f"{name:<12}{figures['p50']:>10.1f}{figures['p99']:>10.1f}{figures['mean']:>10.1f}")
    big_p99 = results[f"{args.rules} rules"]["p99"]
    small_p99 = results["1 rule"]["p99"]
    print(f"ratio p99 {args.rules} rules / 1 rule: {big_p99 / small_p99:.2f}x")
    print(
        f"target 50 rules p99 < 1000 us: {'met' if big_p99 < 1000 else 'NOT met'} ({big_p99:.1f} us)"
    )


if __name__ == "__main__":
    main()
