#!/usr/bin/env python
"""Gate benchmark: the real app on PostgreSQL under gunicorn, driven by N keep-alive clients.

    make bench                                  # defaults below
    .venv/bin/python bench/gate.py --duration 20 --clients 32 --workers 5 --threads 4

What it does (figures, not asserts):

1. (Re)creates a separate PostgreSQL database (``--db-name``, default ``tollgate_bench_gate``) on the
   server of ``$DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432``) and migrates it.
2. Seeds one tenant, one API key, one hot budget (project ``hot``) and 100 budgets over 100
   projects (``p000`` .. ``p099``). Limits are large so every decision is a real ALLOW that
   reserves money, writes the ledger and the outbox.
3. Starts gunicorn with ``docker/gunicorn.conf.py`` and production settings
   (``TOLLGATE_ENV=production``, DEBUG off, secrets generated for this run only).
4. Drives it for ``--duration`` seconds per scenario with ``--clients`` concurrent keep-alive
   HTTP/1.1 connections (a minimal asyncio client, so the load generator costs little CPU):

   a. ``hot``     every decision against the one hot budget;
   b. ``spread``  decisions spread over the 100 budgets;
   c. ``trivial`` ``GET /api/v1/tenant`` (authenticated, one indexed read), same client/server;
   e. ``floor``   ``GET /healthz`` (no authentication, no database): what the server, Django's
                  middleware and the client cost per request before any application work
                  (the ceiling of the stack itself);
   d. ``half``    the spread workload paced at half the rate (b) reached; latency is measured
                  from each request's scheduled send time, so queueing is not hidden.
   f. ``burst``   ``--burst`` (64) decisions sent at the same instant on the one hot budget over
                  pre-opened connections, ``--burst-rounds`` times, under the default policy
                  (250 ms decision deadline, prod fails closed): counts how many answered 503
                  (failed closed) and the slowest answer.
5. ``pgbench`` (TPC-B-like, ``-c --clients``, same duration, scale = clients) on a database of
   its own on the same server: the same-run baseline of what this PostgreSQL does per second.

Prints decisions/s and p50/p95/p99 for each, the trivial/spread ratio, CPU per decision (app and
PostgreSQL), gate decisions/s as a fraction of pgbench tps, the burst's fail-closed count, and
each against its target (issue 12); ``--json`` writes them to a file too.

``--gates compare`` runs every scenario with the request gates off and then on
(``REQUEST_GATES_ENABLED``), ``--rounds`` times alternately on the same database and machine,
and prints what the gates add per request (CPU and latency). The rate limits are raised so the
protection gate checks every request without refusing any.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = 100


def parse_args(argv=None):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each scenario")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2 * (cpus or 1) + 1, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn threads per worker (production default)"
    )
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--db-name", default="tollgate_bench_gate")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL")
        or os.environ.get("REDIS_URL")
        or "redis://127.0.0.1:6379/15",
    )
    parser.add_argument("--log-level", default="info", help="app + gunicorn log level")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at exit")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--scenarios",
        default="hot,spread,trivial,floor,half,burst",
        help="comma list of scenarios to run",
    )
    parser.add_argument(
        "--gates",
        choices=["on", "off", "compare"],
        default="on",
        help="request gates on, off, or both alternately (the added cost per request)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="off/on rounds with --gates compare")
    parser.add_argument("--burst", type=int, default=64, help="simultaneous decisions per burst")
    parser.add_argument("--burst-rounds", type=int, default=5, help="bursts to send")
    parser.add_argument(
        "--pgbench", choices=["on", "off"], default="on", help="run the pgbench baseline"
    )
    return parser.parse_args(argv)


# The issue 12 targets, checked against the same run's figures (printed, never asserted).
TARGETS = {
    "cpu_per_decision_ms": 6.0,  # app + PostgreSQL, spread
    "db_cpu_per_decision_ms": 2.0,
    "spread_vs_trivial": 0.8,
    "gate_vs_pgbench": 0.10,
    "burst_fail_closed": 0,
}


# --- database + environment -------------------------------------------------------------------


def database_url(db_name: str) -> str:
    base = urlparse(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
    return urlunparse(base._replace(path=f"/{db_name}"))


def recreate_database(db_name: str) -> None:
    import psycopg

    admin_url = database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')


def drop_database(db_name: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def production_env(args, metrics_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        TOLLGATE_ENV="production",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        API_KEY_PEPPER=secrets.token_urlsafe(48),
        LEDGER_SIGNING_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        SIGNING_KEY_ENCRYPTION_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        BYOK_KEKS="1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        DATABASE_URL=database_url(args.db_name),
        REDIS_URL=args.redis_url,
        CELERY_BROKER_URL=args.redis_url,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL=args.log_level.upper(),
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
        DJANGO_SETTINGS_MODULE="controlplane.settings",
        # The protection gate checks every request; the bench measures that, not refusals.
        PROTECTION_KEY_RATE="1000000",
        PROTECTION_KEY_BURST="1000000",
        PROTECTION_TENANT_RATE="1000000",
        PROTECTION_TENANT_BURST="1000000",
        PROTECTION_GLOBAL_RATE="1000000",
        PROTECTION_GLOBAL_BURST="1000000",
        PROTECTION_KEY_PREFIX=f"bench:{secrets.token_hex(4)}:gate:",
    )
    return env


SEED = """
import json
from billing.services.plans import tenant_plan_set
from controlplane.tenancy import services
from controlplane.tenancy.scopes import all_scopes
from enforcement.services.budgets import budget_create

tenant = services.tenant_create(slug="bench", name="Bench")
tenant_plan_set(tenant=tenant, plan="enterprise")  # no plan limits in the way
_, key = services.api_key_issue(tenant=tenant, name="bench", scopes=list(all_scopes()))
hot = services.project_create(tenant=tenant, slug="hot", name="Hot")
budget_create(tenant=tenant, project=hot, limit_micros=10**15, name="hot")
for i in range({projects}):
    project = services.project_create(tenant=tenant, slug=f"p{{i:03d}}", name=f"P{{i}}")
    budget_create(tenant=tenant, project=project, limit_micros=10**15, name=f"spread {{i}}")
print("SEED" + json.dumps({{"key": key}}))
"""


def run_manage(env: dict, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args, env: dict, port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "docker/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--max-requests",
        "0",  # no recycling mid-measurement
    ]
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}; run with --log-level debug")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                if b" 200 " in sock.recv(200):
                    return server
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(server)
    sys.exit("gunicorn did not become healthy within 60 s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)  # the process group we started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --- CPU accounting (load-independent cost per request) ---------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _pids(match) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if match(int(entry), ppid, cmdline):
            found.append(int(entry))
    return found


def cpu_snapshot(server_pid: int, db_name: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the gunicorn workers and of the PostgreSQL backends of the bench DB."""
    if not os.path.isdir("/proc"):
        return {"app": {}, "db": {}}
    app = _pids(lambda pid, ppid, cmd: pid == server_pid or ppid == server_pid)
    db = _pids(lambda pid, ppid, cmd: cmd.startswith("postgres:") and f" {db_name} " in cmd)
    return {
        "app": {pid: _proc_cpu(pid) for pid in app},
        "db": {pid: _proc_cpu(pid) for pid in db},
    }


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    return {
        kind: sum(after[kind][pid] - before[kind].get(pid, 0.0) for pid in after[kind])
        for kind in ("app", "db")
    }


# --- the load generator -----------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, path: str, body: bytes = b"", extra: str = "") -> int:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.auth}{extra}"
            f"Content-Length: {len(body)}\r\n"
        )
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        close = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.writer.close()
            await self.open()
        return status

    def close(self):
        if self.writer is not None:
            self.writer.close()


def decision_body(project: str) -> bytes:
    return json.dumps(
        {
            "project": project,
            "environment": "prod",
            "action": "bench",
            "estimated_cost_usd": "0.01",
            "ttl_seconds": 3600,
        }
    ).encode()


def make_request(scenario: str, index: int):
    if scenario == "trivial":
        return "GET", "/api/v1/tenant", b"", ""
    if scenario == "floor":
        return "GET", "/healthz", b"", ""
    project = "hot" if scenario == "hot" else f"p{index % PROJECTS:03d}"
    key = f"Idempotency-Key: {uuid.uuid4().hex}\r\n"
    return "POST", "/api/v1/gate/decisions", decision_body(project), key


async def drive(port, token, scenario, clients, duration, warmup, rate=None):
    """Closed loop (rate None) or paced at ``rate`` requests/s in total."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = [0]
    counter = iter(range(10**12))
    conns = [Connection(port, token) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup
    stop = measure_from + duration

    async def client(number: int, conn: Connection):
        interval = clients / rate if rate else 0.0
        scheduled = start + number * (interval / clients if rate else 0)
        while True:
            if rate:
                now = loop.time()
                if scheduled > now:
                    await asyncio.sleep(scheduled - now)
            sent = scheduled if rate else loop.time()
            if sent >= stop:
                return
            method, path, body, extra = make_request(scenario, next(counter))
            status = await conn.request(method, path, body, extra)
            done = loop.time()
            total[0] += 1
            if sent >= measure_from:
                latencies.append(done - sent)
                statuses[status] = statuses.get(status, 0) + 1
            scheduled += interval

    await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    for conn in conns:
        conn.close()
    row = summarise(scenario, latencies, statuses, duration, rate)
    row["requests_incl_warmup"] = total[0]
    return row


async def burst(port, token, size: int, rounds: int) -> dict:
    """``size`` decisions on the hot budget released at the same instant, ``rounds`` times."""
    conns = [Connection(port, token) for _ in range(size)]
    await asyncio.gather(*(c.open() for c in conns))
    loop = asyncio.get_running_loop()
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    closed_per_round = []
    try:
        for _ in range(rounds):
            start = loop.time()

            async def one(conn, index, start=start):
                method, path, body, extra = make_request("hot", index)
                status = await conn.request(method, path, body, extra)
                latencies.append(loop.time() - start)
                return status

            answers = await asyncio.gather(*(one(c, i) for i, c in enumerate(conns)))
            for status in answers:
                statuses[status] = statuses.get(status, 0) + 1
            closed_per_round.append(sum(1 for status in answers if status == 503))
            await asyncio.sleep(0.5)
    finally:
        for conn in conns:
            conn.close()
    row = summarise("burst", latencies, statuses, 1.0, None)
    row["per_second"] = float("nan")
    row["fail_closed_per_round"] = closed_per_round
    row["requests_incl_warmup"] = len(latencies)
    return row


def run_pgbench(args) -> dict | None:
    """TPC-B-like pgbench with the same clients and duration, on a database of its own."""
    import shutil

    binary = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    if not os.path.exists(binary):
        print("pgbench: not installed, skipped", flush=True)
        return None
    db_name = f"{args.db_name}_pgbench"
    recreate_database(db_name)
    url = database_url(db_name)
    try:
        subprocess.run(
            [binary, "-i", "-q", "-s", str(max(args.clients, 1)), url],
            check=True,
            capture_output=True,
            text=True,
        )
        jobs = min(args.clients, os.cpu_count() or 1)
        result = subprocess.run(
            [
                binary,
                "-c",
                str(args.clients),
                "-j",
                str(jobs),
                "-T",
                str(int(args.duration)),
                "-M",
                "prepared",
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        drop_database(db_name)
    tps = None
    for line in result.stdout.splitlines():
        if (line.startswith("tps") and "without initial connection time" in line) or (
            line.startswith("tps") and tps is None
        ):
            tps = float(line.split("=", 1)[1].split()[0])
    print(
        f"pgbench TPC-B-like: {tps:.1f} tps ({args.clients} clients, scale {args.clients})",
        flush=True,
    )
    return {"scenario": "pgbench", "tps": tps, "clients": args.clients}


def print_targets(by_name: dict, pgbench: dict | None) -> None:
    """Each issue-12 target next to this run's figure."""
    print("targets (issue 12), this run:")
    spread = by_name.get("spread")
    if spread:
        per = spread["app_cpu_ms"] + spread["db_cpu_ms"]
        marks = [
            (
                "CPU per spread decision (app + PostgreSQL)",
                per,
                TARGETS["cpu_per_decision_ms"],
                "ms",
                "<=",
            ),
            (
                "PostgreSQL CPU per decision",
                spread["db_cpu_ms"],
                TARGETS["db_cpu_per_decision_ms"],
                "ms",
                "<=",
            ),
        ]
        if "trivial" in by_name:
            marks.append(
                (
                    "spread decisions/s vs trivial req/s",
                    spread["per_second"] / by_name["trivial"]["per_second"],
                    TARGETS["spread_vs_trivial"],
                    "x",
                    ">=",
                )
            )
        if pgbench and pgbench.get("tps"):
            marks.append(
                (
                    "spread decisions/s vs pgbench tps",
                    spread["per_second"] / pgbench["tps"],
                    TARGETS["gate_vs_pgbench"],
                    "x",
                    ">=",
                )
            )
        for label, value, target, unit, op in marks:
            met = value <= target if op == "<=" else value >= target
            print(
                f"  {label:<44} {value:8.3f} {unit}  target {op} {target} {unit}  "
                f"{'met' if met else 'NOT met'}",
                flush=True,
            )
    if "burst" in by_name:
        closed = sum(by_name["burst"]["fail_closed_per_round"])
        print(
            f"  {'burst: decisions failed closed':<44} {closed:8d}    target = 0      "
            f"{'met' if closed == 0 else 'NOT met'} (per round "
            f"{by_name['burst']['fail_closed_per_round']})",
            flush=True,
        )


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def summarise(scenario, latencies, statuses, duration, rate):
    values = sorted(latencies)
    ok = sum(n for status, n in statuses.items() if status < 300)
    return {
        "scenario": scenario,
        "target_rate": rate,
        "requests": len(values),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "per_second": round(len(values) / duration, 1),
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p95_ms": round(percentile(values, 95) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round(values[-1] * 1000, 2) if values else float("nan"),
    }


def print_row(row):
    label = row["scenario"] + (f" @{row['target_rate']:.0f}/s" if row["target_rate"] else "")
    print(
        f"{label:<18} {row['per_second']:>9.1f}/s  p50 {row['p50_ms']:>7.2f} ms  "
        f"p95 {row['p95_ms']:>7.2f} ms  p99 {row['p99_ms']:>7.2f} ms  "
        f"cpu/req app {row.get('app_cpu_ms', float('nan')):.2f} ms "
        f"db {row.get('db_cpu_ms', float('nan')):.2f} ms "
        f"client {row.get('client_cpu_ms', float('nan')):.2f} ms  statuses {row['statuses']}",
        flush=True,
    )


def run_scenarios(args, scenarios, server, port, token) -> list[dict]:
    rows, by_name = [], {}
    for scenario in scenarios:
        before = cpu_snapshot(server.pid, args.db_name)
        client_before = time.process_time()
        if scenario == "burst":
            row = asyncio.run(burst(port, token, args.burst, args.burst_rounds))
        elif scenario == "half":
            if "spread" not in by_name:
                continue
            rate = by_name["spread"]["per_second"] / 2
            row = asyncio.run(
                drive(port, token, "spread", args.clients, args.duration, args.warmup, rate)
            )
            row["scenario"] = "half"
        else:
            row = asyncio.run(
                drive(port, token, scenario, args.clients, args.duration, args.warmup)
            )
        used = cpu_used(before, cpu_snapshot(server.pid, args.db_name))
        count = max(row.pop("requests_incl_warmup"), 1)
        row["app_cpu_ms"] = round(used["app"] / count * 1000, 2)
        row["db_cpu_ms"] = round(used["db"] / count * 1000, 2)
        row["client_cpu_ms"] = round((time.process_time() - client_before) / count * 1000, 2)
        by_name[row["scenario"]] = row
        rows.append(row)
        print_row(row)
    if "burst" in by_name:
        print(
            f"burst: {args.burst} simultaneous decisions on one budget x {args.burst_rounds}: "
            f"failed closed per round {by_name['burst']['fail_closed_per_round']}",
            flush=True,
        )
    if "trivial" in by_name and "spread" in by_name:
        ratio = by_name["spread"]["per_second"] / by_name["trivial"]["per_second"]
        print(f"spread decisions/s vs trivial endpoint req/s: {ratio:.2f}")
    if "spread" in by_name:
        spread = by_name["spread"]
        per = spread["app_cpu_ms"] + spread["db_cpu_ms"]
        if per > 0:
            cpus = os.cpu_count() or 1
            print(
                f"CPU per spread decision: {per:.2f} ms (app {spread['app_cpu_ms']:.2f} + "
                f"PostgreSQL {spread['db_cpu_ms']:.2f}); {cpus} idle CPUs could serve at most "
                f"~{cpus * 1000 / per:.0f} decisions/s before the load generator's share"
            )
    pgbench = run_pgbench(args) if args.pgbench == "on" else None
    if pgbench and pgbench.get("tps") and "spread" in by_name:
        fraction = by_name["spread"]["per_second"] / pgbench["tps"]
        print(f"spread decisions/s as a fraction of pgbench tps: {fraction:.3f}", flush=True)
        rows.append(pgbench)
    print_targets(by_name, pgbench)
    return rows


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def print_gate_cost(by_mode: dict[str, list[dict]]) -> None:
    """Median over rounds, gates on minus gates off, per scenario."""
    print("request gates: on minus off (median of the rounds)")
    names = sorted({row["scenario"] for row in by_mode["1"]})
    for name in names:
        off = [r for r in by_mode["0"] if r["scenario"] == name]
        on = [r for r in by_mode["1"] if r["scenario"] == name]
        if not off or not on:
            continue
        delta = {
            key: _median([r[key] for r in on]) - _median([r[key] for r in off])
            for key in ("app_cpu_ms", "db_cpu_ms", "p50_ms", "p99_ms")
        }
        rate = _median([r["per_second"] for r in on]) / _median([r["per_second"] for r in off])
        print(
            f"  {name:<8} app CPU/req {delta['app_cpu_ms']:+.2f} ms  PostgreSQL CPU/req "
            f"{delta['db_cpu_ms']:+.2f} ms  p50 {delta['p50_ms']:+.2f} ms  "
            f"p99 {delta['p99_ms']:+.2f} ms  throughput x{rate:.2f}",
            flush=True,
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    metrics_dir = tempfile.mkdtemp(prefix="tollgate-bench-metrics-")
    env = production_env(args, metrics_dir)
    port = args.port or free_port()
    print(f"database {args.db_name}: recreate + migrate", flush=True)
    recreate_database(args.db_name)
    server = None
    results = []
    try:
        run_manage(env, "migrate", "--noinput")
        seeded = run_manage(env, "shell", stdin=SEED.format(projects=PROJECTS))
        token = json.loads(seeded.split("SEED", 1)[1].strip())["key"]
        modes = {"on": ["1"], "off": ["0"], "compare": ["0", "1"] * max(args.rounds, 1)}
        by_mode: dict[str, list[dict]] = {"0": [], "1": []}
        for gates in modes[args.gates]:
            env["REQUEST_GATES_ENABLED"] = gates
            server = start_server(args, env, port)
            print(
                f"gunicorn: {args.workers} workers x {args.threads} threads on 127.0.0.1:{port}; "
                f"{args.clients} clients; {args.duration:.0f} s per scenario "
                f"(+{args.warmup:.0f} s warm-up); request gates {'on' if gates == '1' else 'off'}",
                flush=True,
            )
            rows = run_scenarios(args, scenarios, server, port, token)
            for row in rows:
                row["gates"] = gates == "1"
            by_mode[gates].extend(rows)
            results.extend(rows)
            stop_server(server)
            server = None
        if args.gates == "compare":
            print_gate_cost(by_mode)
    finally:
        if server is not None:
            stop_server(server)
        if not args.keep_db:
            drop_database(args.db_name)
    report = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "args": vars(args),
        "results": results,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
