"""Before/after of the reads issue 17 bounded: ledger export, a decisions page, simulation.

Usage: .venv/bin/python bench/reads.py [--entries 99000] [--decisions 3000] [--big-rows 500]

Runs on its own PostgreSQL database (``tollgate_bench_reads``, recreated and migrated) on the
server of ``$DATABASE_URL``. "Before" is the previous code path rebuilt here, in the same run:

1. ledger export of ``--entries`` entries: every row serialised into a list and the whole body
   built as one string (before) vs the streamed export (``GET /api/v1/ledger/export``);
2. ``GET /api/v1/decisions?limit=500`` over ``--big-rows`` decisions whose stored request is
   ~250 kB (what the old input limits let through): a 500-row page (before) vs the bounded page
   (limit at most 200 and 4 MiB of JSON);
3. simulation over ``--decisions`` decisions: replayed inside the request (before) vs the
   request queuing a job (202) and the worker running it (``SIMULATION_MAX_DECISIONS`` cap).

Memory is the peak of Python allocations during the call (``tracemalloc``), time is wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_NAME = "tollgate_bench_reads"


def _database_url(name: str) -> str:
    parsed = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"))
    return urlunparse(parsed._replace(path=f"/{name}"))


def _recreate() -> None:
    import psycopg

    with psycopg.connect(_database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def measure(fn, *, again=None):
    """(result, seconds, peak MB of Python allocations): timed once untraced (tracing slows
    allocation-heavy code many times over), then run again (``again``, default ``fn``) under
    tracemalloc for the peak."""
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    del result
    tracemalloc.start()
    try:
        result = (again or fn)()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, elapsed, peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=99_000)
    parser.add_argument("--decisions", type=int, default=3_000)
    parser.add_argument("--big-rows", type=int, default=500)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--only", default="auth,export,page,simulate", help="comma list of sections to run"
    )
    args = parser.parse_args()

    _recreate()
    os.environ["DATABASE_URL"] = _database_url(DB_NAME)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings_test")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            import psycopg

            with psycopg.connect(_database_url("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def seed(args):
    from controlplane.audit.models import LedgerEntry
    from controlplane.core.clock import db_now
    from controlplane.tenancy import services
    from controlplane.tenancy.scopes import all_scopes
    from enforcement.models import Decision
    from enforcement.services.budgets import budget_create
    from tests.enforcement.helpers import gate_service

    tenant = services.tenant_create(slug="bench", name="Bench")
    project = services.project_create(tenant=tenant, slug="payments", name="Payments")
    _, key = services.api_key_issue(tenant=tenant, name="bench", scopes=list(all_scopes()))
    budget_create(tenant=tenant, project=project, limit_micros=10**15)
    template = Decision.objects.get(pk=gate_service(tenant, micros=1_000_000)["decision_id"])
    now = db_now()
    payload = {"decision": "dec_x", "amount": 1_000_000, "credits": [], "mode": "hard"}
    batch = []
    for i in range(args.entries):
        batch.append(
            LedgerEntry(
                tenant=tenant,
                chain="bench:export",
                seq=i + 1,
                kind="decision.recorded",
                payload=payload,
                prev_hash="0" * 64,
                hash="0" * 64,
                recorded_at=now,
            )
        )
        if len(batch) == 5000:
            LedgerEntry.objects.bulk_create(batch)
            batch = []
    LedgerEntry.objects.bulk_create(batch)

    def copies(count, request):
        rows = []
        for i in range(count):
            row = Decision(
                **{
                    f.attname: getattr(template, f.attname)
                    for f in Decision._meta.concrete_fields
                    if f.attname != "id"
                }
            )
            row.idempotency_key = f"bench-{request is not None}-{i}"
            row.amount_micros = (i % 10) * 1_000_000
            if request is not None:
                row.request = request
            rows.append(row)
        Decision.objects.bulk_create(rows, batch_size=200)

    copies(args.decisions, None)
    big = {
        **template.request,
        "resource": {"attributes": {f"k{i}": "x" * 250 for i in range(1000)}},
    }
    copies(args.big_rows, big)
    return tenant, key


def run(args) -> None:
    from rest_framework.test import APIClient

    tenant, key = seed(args)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    print(f"seeded {args.entries} ledger entries, {args.decisions} + {args.big_rows} decisions")
    print(f"{'read':<52}{'time':>10}{'peak memory':>14}{'response':>12}")

    def line(name, elapsed, peak, size=None):
        size_text = f"{size / 1e6:9.1f} MB" if size is not None else ""
        print(f"{name:<52}{elapsed:>9.2f}s{peak:>11.1f} MB{size_text:>12}")

    sections = set(args.only.split(","))
    if "auth" in sections:
        auth(tenant)
    if "export" in sections:
        export(args, client, tenant, line)
    if "page" in sections:
        page(client, tenant, line)
    if "simulate" in sections:
        simulate(client, tenant, line)


def auth(tenant) -> None:
    """The authentication read, before (key + tenant + project; a person's key then needed a
    second query for the person) and now (+ whether the person is active and a member)."""
    import statistics

    from django.contrib.auth import get_user_model
    from django.db import connection

    from controlplane.tenancy import auth as auth_module
    from controlplane.tenancy import services
    from controlplane.tenancy.models import ApiKey, Project, Tenant

    user = get_user_model().objects.create_user("bench-person")
    services.membership_set(tenant=tenant, user=user, role="member")
    person, _ = services.api_key_issue(tenant=tenant, name="p", scopes=["tenant:read"], user=user)
    service, _ = services.api_key_issue(tenant=tenant, name="s", scopes=["tenant:read"])
    cols = auth_module._columns
    before_sql = (
        f"SELECT {cols(ApiKey, 'k')}, {cols(Tenant, 't')}, {cols(Project, 'p')} "  # noqa: S608
        'FROM "tenancy_apikey" k JOIN "tenancy_tenant" t ON t."id" = k."tenant_id" '
        'LEFT JOIN "tenancy_project" p ON p."id" = k."project_id" WHERE k."prefix" = %s'
    )
    user_sql = f'SELECT * FROM "{get_user_model()._meta.db_table}" WHERE "id" = %s'  # noqa: S608

    def timed(statements, n=1000):
        samples = []
        with connection.cursor() as cursor:
            for _ in range(n):
                started = time.perf_counter_ns()
                for sql, params in statements:
                    cursor.execute(sql, params)
                    cursor.fetchone()
                samples.append((time.perf_counter_ns() - started) / 1000)
        return statistics.median(samples)

    cases = {
        "service key, before": [(before_sql, [service.prefix])],
        "service key, now": [(auth_module._key_sql(), [service.prefix])],
        "person key, before (+ the person)": [
            (before_sql, [person.prefix]),
            (user_sql, [user.pk]),
        ],
        "person key, now (+ the person and membership)": [
            (auth_module._key_sql(), [person.prefix]),
            (auth_module._person_sql(), [tenant.id, user.pk]),
        ],
    }
    for statements in cases.values():
        timed(statements, 200)
    rounds = {name: [] for name in cases}
    for _ in range(3):  # alternating rounds: this machine's noise moves all of them together
        for name, statements in cases.items():
            rounds[name].append(timed(statements))
    print("authentication read, median us of 1000, three alternating rounds:")
    for name, values in rounds.items():
        print(f"  {name:<44}" + "".join(f"{v:8.0f}" for v in values))


def export(args, client, tenant, line) -> None:
    # 1. export
    from controlplane.audit.api.views import LedgerEntrySerializer
    from controlplane.audit.models import LedgerEntry
    from controlplane.core.canonical import canonical_json

    def export_before():
        rows = [
            LedgerEntrySerializer(entry).data
            for entry in LedgerEntry.objects.filter(tenant=tenant)
            .order_by("recorded_at", "chain", "seq")
            .iterator(chunk_size=2000)
        ]
        return "".join(canonical_json(json.loads(json.dumps(row))) + "\n" for row in rows)

    body, elapsed, peak = measure(export_before)
    line("export, before (list + one string)", elapsed, peak, len(body))
    del body

    def export_now():
        response = client.get("/api/v1/ledger/export?format=jsonl")
        return sum(len(chunk) for chunk in response.streaming_content)

    size, elapsed, peak = measure(export_now)
    line("export, now (streamed from a spooled file)", elapsed, peak, size)


def page(client, tenant, line) -> None:
    # 2. a decisions page of big rows
    import json

    from rest_framework.renderers import JSONRenderer

    from enforcement.api.serializers import DecisionSerializer
    from enforcement.models import Decision

    def page_before():
        rows = Decision.objects.filter(tenant=tenant).select_related("project", "reservation")
        data = DecisionSerializer(rows.order_by("-id")[:500], many=True).data
        return len(JSONRenderer().render({"results": data, "next": None}))

    size, elapsed, peak = measure(page_before)
    line("decisions?limit=500, before (500 rows)", elapsed, peak, size)
    response = client.get("/api/v1/decisions?limit=500")
    print(f"  now: limit=500 -> {response.status_code} {response.json()['code']}")

    def page_now():
        body = client.get("/api/v1/decisions?limit=200").json()
        return len(json.dumps(body)), len(body["results"])

    (size, count), elapsed, peak = measure(page_now)
    line(f"decisions?limit=200, now ({count} rows: 4 MiB budget)", elapsed, peak, size)


def simulate(client, tenant, line) -> None:
    # 3. simulation
    from controlplane.core.clock import db_now
    from enforcement.policy.schema import DEFAULT_DOCUMENT
    from enforcement.services.policies import compiled_from_document, validate_policy_input
    from enforcement.services.simulation import policy_simulate
    from enforcement.services.simulation_jobs import simulation_job_run

    document, _, _ = validate_policy_input(
        data={
            **DEFAULT_DOCUMENT,
            "rules": [
                {"id": "big", "when": "request.amount_usd > 5.0", "then": "require_approval"}
            ],
        }
    )
    policy = compiled_from_document(document)
    until = db_now() + timedelta(minutes=1)
    since = until - timedelta(days=1)

    report, elapsed, peak = measure(
        lambda: policy_simulate(tenant=tenant, policy=policy, since=since, until=until)
    )
    line(f"simulate, before (in the request, {report['evaluated']} decisions)", elapsed, peak)

    def simulate_request():
        response = client.post(
            "/api/v1/policies/simulate",
            {"document": document, "since": since.isoformat(), "until": until.isoformat()},
            format="json",
        )
        return response.json()

    # The request queues the job on the broker of $REDIS_URL; the worker's part runs here.
    jobs = []
    job, elapsed, peak = measure(lambda: jobs.append(simulate_request()) or jobs[-1])
    line("simulate, now: the request (202, job queued)", elapsed, peak)
    _, elapsed, peak = measure(
        lambda: simulation_job_run(job_id=jobs[0]["id"]),
        again=lambda: simulation_job_run(job_id=jobs[1]["id"]),
    )
    job = jobs[0]
    finished = client.get(job["url"]).json()
    line(
        f"simulate, now: the worker ({finished['progress']['processed']} decisions, "
        f"cap {finished['progress']['max_decisions']})",
        elapsed,
        peak,
    )


if __name__ == "__main__":
    main()
