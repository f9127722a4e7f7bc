"""The chaos run (issue 11, item 9): `make chaos`, sequential, after the suite.

The production app (docker/gunicorn.conf.py, production settings, connection pool), Celery
workers and beat run against a private PostgreSQL and a private Redis. Faults: PostgreSQL
restart under gate load, Redis stop and start under gate load, kill -9 of a worker mid-sweep,
two beat schedulers at once. After each: counters equal allocations equal ledger, the ledger
verifies, no reservation resolved twice, the app recovers without a restart, and the only
errors seen during the fault are 503s. A table of what was injected and seen is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import httpx
import psycopg
import pytest

from tests.servers.app import migrate_and_seed, production_env
from tests.servers.celery import start_beat, start_worker, stop
from tests.servers.gunicorn import ROOT, gunicorn_server
from tests.servers.postgres import private_postgres, private_redis

ROWS: list[dict] = []
LOAD_THREADS = 8


class World:
    def __init__(self, pg, redis, base, seed, env):
        self.pg, self.redis, self.base, self.seed, self.env = pg, redis, base, seed, env
        self.auth = {"Authorization": f"Bearer {seed['key']}"}

    def invariants(self) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "tests.servers.invariants"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def run_python(self, *args: str) -> None:
        """Run Python with this world's settings (the private servers)."""
        subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            timeout=600,
        )

    def count(self, sql: str) -> int:
        with psycopg.connect(self.pg.url(), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def world():
    # Durable (fsync on): a crash must not lose what was acknowledged.
    with private_postgres(max_connections=40, durable=True) as pg, private_redis() as redis:
        env = production_env(
            pg.url(),
            redis.url,
            WEB_CONCURRENCY="2",
            GUNICORN_THREADS="4",
            DB_POOL_MAX_SIZE="4",
            DB_POOL_TIMEOUT_SECONDS="2",
            RESERVATION_SWEEP_SECONDS="1",
            APPROVAL_SWEEP_SECONDS="3600",
            OUTBOX_POLL_SECONDS="3600",
            BYOK_LIVENESS_INTERVAL_SECONDS="3600",
            LEDGER_CHECKPOINT_SECONDS="5",
            LEDGER_VERIFY_SECONDS="3600",
        )
        # A deadline for correctness, not speed: this machine is shared and loaded.
        seed = migrate_and_seed(env, deadline_ms=5000)
        with gunicorn_server(env) as (base, _process, _log):
            yield World(pg, redis, base, seed, env)
    print_table()


class Load:
    """Gate calls (prod: fail closed) from a few threads; each ALLOW is committed or released."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.stop = threading.Event()
        self.seen: Counter = Counter()
        self.fault_window: tuple[float, float] | None = None
        self.bad: list[str] = []
        self.lock = threading.Lock()
        self.pending_retries: list[tuple[str, str]] = []
        self.events: list[tuple[float, str, object]] = []

    def _record(self, what: str, status, started: float) -> None:
        with self.lock:
            self.seen[f"{what} {status}"] += 1
            self.events.append((started, time.monotonic(), what, status))

    def judge(self) -> None:
        """503s are expected from the fault until the first success after it; nothing else."""
        fault_start, fault_end = self.fault_window
        back = min(
            (t for t, _, _, status in self.events if status in (200, 201) and t >= fault_end),
            default=float("inf"),
        )
        for started, ended, what, status in self.events:
            if status in (200, 201):
                continue
            # In flight when the fault began, or started before the app was back.
            if str(status).startswith("503") and ended >= fault_start and started <= back:
                continue
            self.bad.append(f"{what} {status} at {started - fault_start:+.1f}s")

    def _one(self, http: httpx.Client, index: int) -> None:
        started = time.monotonic()
        try:
            response = http.post(
                "/api/v1/gate/decisions",
                json={"project": "payments", "environment": "prod", "estimated_cost_usd": "0.50"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
        except httpx.HTTPError as exc:
            self._record("gate", type(exc).__name__, started)
            return
        status = response.status_code
        if status == 503:
            body = response.json()
            status = f"503 {body.get('code')}/{body.get('fail_cause') or body.get('cause')}"
        self._record("gate", status, started)
        if response.status_code != 201 or not response.json().get("reservation"):
            return
        reservation = response.json()["reservation"]["id"]
        action = "commit" if index % 2 else "release"
        self._resolve(http, reservation, action)

    def _resolve(self, http: httpx.Client, reservation: str, action: str) -> None:
        started = time.monotonic()
        body = {"actual_cost_usd": "0.40"} if action == "commit" else {}
        try:
            response = http.post(f"/api/v1/reservations/{reservation}/{action}", json=body)
            status = response.status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        self._record(action, status, started)
        if status != 200:
            with self.lock:
                self.pending_retries.append((reservation, action))

    def _thread(self, index: int) -> None:
        with httpx.Client(base_url=self.world.base, headers=self.world.auth, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                self._one(http, index + n)
                n += 1

    def run(self, fault, *, before: float = 2.0, after: float = 4.0) -> dict:
        threads = [threading.Thread(target=self._thread, args=(i,)) for i in range(LOAD_THREADS)]
        for thread in threads:
            thread.start()
        time.sleep(before)
        fault_started = time.monotonic()
        injected = fault()
        self.fault_window = (fault_started, time.monotonic())
        time.sleep(after)
        self.stop.set()
        for thread in threads:
            thread.join(60)
        self.judge()
        # A resolution refused during the fault is retried once the app is back: it must apply
        # now (never 409: a 503 must not have done anything).
        with httpx.Client(base_url=self.world.base, headers=self.world.auth, timeout=30) as http:
            for reservation, action in self.pending_retries:
                body = {"actual_cost_usd": "0.40"} if action == "commit" else {}
                response = http.post(f"/api/v1/reservations/{reservation}/{action}", json=body)
                if response.status_code == 409:
                    # The first attempt's COMMIT reached the server but its answer was lost with
                    # the connection: the change applied exactly once, and the retry says so.
                    state = http.get(f"/api/v1/reservations/{reservation}").json()["state"]
                    applied = {"commit": "committed", "release": "released"}[action]
                    self.seen[f"retry {action} 409 (already {state})"] += 1
                    if state != applied:
                        self.bad.append(f"retry {action} 409 but state {state}")
                elif response.status_code != 200:
                    self.bad.append(f"retry {action} {response.status_code}")
        return injected or {}


def recovered(world: World, seconds: float = 60) -> float:
    """Seconds until a gate call succeeds again (the app was not restarted)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            response = httpx.post(
                world.base + "/api/v1/gate/decisions",
                json={"project": "payments", "environment": "prod", "estimated_cost_usd": "0.01"},
                headers={**world.auth, "Idempotency-Key": uuid.uuid4().hex},
                timeout=10,
            )
            if response.status_code == 201:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the app did not recover")


def check_and_record(world: World, fault: str, seen: dict, bad: list, extra: str = "") -> None:
    recovery = recovered(world)
    inv = world.invariants()
    ROWS.append(
        {
            "fault": fault,
            "seen": ", ".join(f"{k}x{v}" for k, v in sorted(seen.items())) or "-",
            "unexpected": len(bad),
            "recovered_s": f"{recovery:.1f}",
            "counters=alloc=ledger": inv["counters"] and inv["ledger_equals_counters"],
            "verify": inv["verify"],
            "resolved_twice": inv["resolved_twice"],
            "extra": extra,
        }
    )
    assert not bad, bad[:10]
    assert inv["counters"], inv
    assert inv["ledger_equals_counters"], inv
    assert inv["verify"], inv
    assert inv["resolved_twice"] == 0, inv


def test_postgres_restart_during_gate_load(world):
    load = Load(world)
    load.run(lambda: world.pg.restart("fast"))
    assert load.seen["gate 201"] > 0
    check_and_record(world, "PostgreSQL restart (fast) under gate load", load.seen, load.bad)


def test_postgres_crash_during_gate_load(world):
    load = Load(world)

    def crash():
        world.pg.kill9()
        world.pg.start()

    load.run(crash)
    check_and_record(world, "PostgreSQL kill -9 + start under gate load", load.seen, load.bad)


def test_redis_stop_and_start_during_gate_load(world):
    load = Load(world)
    readyz = {}

    def fault():
        world.redis.stop()
        time.sleep(2)
        readyz["down"] = httpx.get(world.base + "/readyz", timeout=10).status_code
        world.redis.start()

    load.run(fault)
    assert readyz["down"] == 503
    # Redis holds no money: the gate decided throughout, nothing failed.
    assert not [k for k in load.seen if k.endswith(" 503")], load.seen
    assert httpx.get(world.base + "/readyz", timeout=10).status_code == 200
    check_and_record(
        world, "Redis stop + start under gate load", load.seen, load.bad, "readyz 503 while down"
    )


def test_kill_9_of_a_worker_mid_sweep(world):
    total = 1500
    world.run_python("-m", "tests.servers.seed", json.dumps({"expiring": total}))
    time.sleep(1.5)  # every one of them is now due
    expired_sql = "SELECT count(*) FROM enforcement_reservation WHERE state = 'expired'"
    before = world.count(expired_sql)
    worker, _ = start_worker(world.env, name="victim")
    try:
        _send_sweep(world)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = world.count(expired_sql) - before
            if done > 0:
                break
            time.sleep(0.02)
        stop(worker, hard=True)  # kill -9 mid-sweep (solo pool: the task dies with it)
        at_kill = world.count(expired_sql) - before
    finally:
        stop(worker, hard=True)
    assert 0 < at_kill < total, at_kill
    worker, _ = start_worker(world.env, name="successor")
    try:
        _send_sweep(world)
        deadline = time.monotonic() + 180
        while world.count(expired_sql) - before < total and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(worker)
    swept = world.count(expired_sql) - before
    assert swept == total, (swept, total)
    check_and_record(
        world,
        "kill -9 Celery worker mid-sweep",
        {"expired at kill": at_kill, "expired after": swept},
        [],
        f"{total} due",
    )


def _send_sweep(world: World) -> None:
    world.run_python(
        "-c",
        "import django; django.setup(); "
        "from enforcement.tasks import reservations_expire_task as t; t.delay()",
    )


def test_two_beat_schedulers_at_once(world):
    total = 300
    world.run_python("-m", "tests.servers.seed", json.dumps({"expiring": total}))
    pending_sql = (
        "SELECT count(*) FROM enforcement_reservation WHERE state = 'pending' "
        "AND expires_at < now()"
    )
    processes = [
        start_worker(world.env, pool="threads", name="w1")[0],
        start_worker(world.env, pool="threads", name="w2")[0],
        start_beat(world.env, name="b1")[0],
        start_beat(world.env, name="b2")[0],
    ]
    try:
        load = Load(world)
        load.run(lambda: time.sleep(1), before=1, after=4)
        deadline = time.monotonic() + 120
        while world.count(pending_sql) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert world.count(pending_sql) == 0
        time.sleep(3)  # both beats keep sending sweeps and checkpoints meanwhile
        alive = [p.poll() is None for p in processes]
    finally:
        for process in processes:
            stop(process)
    assert all(alive), alive
    check_and_record(
        world, "two beat schedulers + two workers", load.seen, load.bad, f"{total} due"
    )


def print_table() -> None:
    if not ROWS:
        return
    columns = list(ROWS[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in ROWS)) for c in columns}
    line = " | ".join(c.ljust(widths[c]) for c in columns)
    print("\n\nChaos run: what was injected and what was seen")
    print(line)
    print("-+-".join("-" * widths[c] for c in columns))
    for row in ROWS:
        print(" | ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print()
