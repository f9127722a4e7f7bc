#!/usr/bin/env python
"""Dashboard benchmark: every page's render time and query count with 100,000 decisions.

    .venv/bin/python bench/dashboard.py                      # 100k decisions, 20 rounds
    .venv/bin/python bench/dashboard.py --decisions 200000 --rounds 40 --keep-db

What it does (figures, not asserts):

1. (Re)creates a separate PostgreSQL database (``--db-name``, default
   ``tollgate_bench_dashboard``) on the server of ``$DATABASE_URL`` and migrates it.
2. Seeds the demo tenant (``seed_demo``: budgets, policy, approvals, a month of history through
   the services), then bulk-inserts ``--decisions`` more decisions for it, spread over 30 days,
   projects, environments, sources and outcomes, with the JSON (request, response, waterfall,
   context, snapshot) of real decisions, ids in time order as the gate makes them. Adds
   ``--pending`` pending approval requests through the gate. ``VACUUM ANALYZE``.
3. Signs in as the demo owner and requests every page ``--rounds`` times in-process (Django's
   test client: the whole request path, no network), after one warm-up. Prints p50 / p95 /
   max milliseconds and the number of SQL queries per page, and the ratio of each page's p50
   to the sign-in page's (same run, same machine: the floor of a rendered page).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gate import database_url, drop_database, recreate_database  # noqa: E402 - bench/ sibling


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=200, help="pending approval requests")
    parser.add_argument("--rounds", type=int, default=20, help="requests per page")
    parser.add_argument("--db-name", default="tollgate_bench_dashboard")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at exit")
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args(argv)


def setup_django(db_name: str) -> None:
    os.environ["DATABASE_URL"] = database_url(db_name)
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings_test"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()


def _id_at(prefix: str, moment: datetime) -> str:
    """An id like the gate's (48-bit ms time + 80 random bits), for a past moment."""
    from controlplane.core.ids import ID_BODY_LENGTH, _encode

    value = (int(moment.timestamp() * 1000) << 80) | secrets.randbits(80)
    return f"{prefix}_{_encode(value, ID_BODY_LENGTH)}"


def bulk_decisions(tenant, count: int) -> None:
    """``count`` decisions shaped like the stored ones (same JSON), oldest first."""
    from enforcement.models import Decision

    templates = list(Decision.objects.for_tenant(tenant).exclude(snapshot={}).order_by("id")[:200])
    rng = random.Random(13)
    now = datetime.now(UTC)
    start = now - timedelta(days=30)
    step = (now - start) / count
    batch = []
    for index in range(count):
        model = templates[index % len(templates)]
        moment = start + step * index
        key = f"bench:{index}"
        amount = rng.randrange(1, 2_000) * 1_000_000
        batch.append(
            Decision(
                id=_id_at("dec", moment),
                tenant=tenant,
                source=model.source,
                idempotency_key=key,
                fingerprint=model.fingerprint,
                project_id=model.project_id,
                environment=model.environment,
                outcome=model.outcome,
                evaluated_outcome=model.evaluated_outcome,
                mode=model.mode,
                enforced=model.enforced,
                reason_code=model.reason_code,
                amount_micros=amount,
                request={**model.request, "idempotency_key": key},
                response=model.response,
                policy_version=model.policy_version,
                policy_sha256=model.policy_sha256,
                snapshot=model.snapshot,
                created_at=moment,
            )
        )
        if len(batch) == 5000:
            Decision.objects.bulk_create(batch)
            batch.clear()
    Decision.objects.bulk_create(batch)


def pending_approvals(tenant, count: int) -> None:
    """Held requests on a project of their own; the company budget is raised to hold them."""
    from controlplane.tenancy.services import project_create
    from enforcement.models import Budget
    from enforcement.services.budgets import budget_update
    from enforcement.services.gate import GateRequest, gate_decide

    project_create(tenant=tenant, slug="load", name="Load")
    company = Budget.objects.get(tenant=tenant, project=None, period="monthly")
    budget_update(budget=company, limit_micros=10**13)
    for index in range(count):
        gate_decide(
            tenant=tenant,
            api_key=None,
            req=GateRequest(
                source="api",
                idempotency_key=f"bench:pending:{index}",
                project="load",
                environment="prod",
                estimated_micros=1_000_000_000 + index,
                requester="ci-bot@example.com",
            ),
        )


def measure(client, url: str, rounds: int, method: str = "get", data=None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call = getattr(client, method)
    response = call(url, data) if data else call(url)  # warm-up
    assert response.status_code in (200, 302), (url, response.status_code)
    timings = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = call(url, data) if data else call(url)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 302), (url, response.status_code)
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1),
        "max_ms": round(timings[-1], 1),
        "queries": len(queries),
        "bytes": len(response.content),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    recreate_database(args.db_name)
    try:
        setup_django(args.db_name)
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from controlplane.tenancy.models import Tenant
        from enforcement.models import Decision

        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        out = io.StringIO()
        call_command("seed_demo", json=True, stdout=out)
        seeded = json.loads(out.getvalue())
        tenant = Tenant.objects.get(slug="demo")
        bulk_decisions(tenant, args.decisions)
        pending_approvals(tenant, args.pending)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        total = Decision.objects.for_tenant(tenant).count()
        print(
            f"Seeded {total} decisions and {args.pending} more pending approvals in "
            f"{time.perf_counter() - started:.0f} s (database {args.db_name})."
        )

        client = Client()
        client.get("/dashboard/login/")
        floor = measure(client, "/dashboard/login/", args.rounds)
        assert client.login(username=seeded["username"], password=seeded["password"])
        some = Decision.objects.for_tenant(tenant).order_by("-id").values_list("id", flat=True)[500]
        today = datetime.now(UTC).date()
        pages = {
            "overview": "/dashboard/",
            "approvals": "/dashboard/approvals/",
            "decisions": "/dashboard/decisions/",
            "decisions?outcome=DENY&project=ml": "/dashboard/decisions/?outcome=DENY&project=ml",
            "decisions?environment=staging&since=7d": "/dashboard/decisions/?environment=staging"
            f"&since={today - timedelta(days=7)}",
            "decisions (page 5)": "/dashboard/decisions/?before="
            + Decision.objects.for_tenant(tenant).order_by("-id").values_list("id", flat=True)[250],
            "decision": f"/dashboard/decisions/{some}/",
            "byok": "/dashboard/byok/",
            "ledger": "/dashboard/ledger/",
            "policies": "/dashboard/policies/",
            "policy": "/dashboard/policies/2/",
            "simulate (form)": "/dashboard/policies/simulate/",
            "keys": "/dashboard/keys/",
        }
        figures = {"login page (floor)": floor}
        for name, url in pages.items():
            figures[name] = measure(client, url, args.rounds)
        yesterday = today - timedelta(days=1)
        figures["simulate 1 day (POST)"] = measure(
            client,
            "/dashboard/policies/simulate/",
            max(3, args.rounds // 5),
            method="post",
            data={"version": "1", "since": str(yesterday), "until": str(yesterday)},
        )
        print(
            f"\n{'page':42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8} {'x floor':>8}"
        )
        for name, row in figures.items():
            ratio = row["p50_ms"] / floor["p50_ms"] if floor["p50_ms"] else 0
            print(
                f"{name:42} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['max_ms']:8.1f} "
                f"{row['queries']:8d} {ratio:8.1f}"
            )
        if args.json:
            Path(args.json).write_text(json.dumps({"decisions": total, "pages": figures}, indent=2))
    finally:
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            drop_database(args.db_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
