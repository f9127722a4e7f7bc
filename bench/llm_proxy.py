#!/usr/bin/env python
"""LLM proxy benchmark, side by side with LiteLLM's proxy in one run (issue 18 item 7).

    .venv/bin/python bench/llm_proxy.py                    # both proxies, defaults below
    .venv/bin/python bench/llm_proxy.py --peer-bench ../shared/peer-bench --n 2000

What it does (figures, not asserts):

1. (Re)creates a PostgreSQL database (``--db-name``, default ``tollgate_bench_llm``) on the
   server of ``$DATABASE_URL``, migrates it with production settings, and seeds one tenant on
   the Enterprise plan with a project ``bench``, a budget that never runs out, the platform key
   allowed for ``openai``, an API key bound to ``bench``/``prod`` and a price catalog holding
   the peer bench's model ``fake-gpt`` (gpt-4o-mini's prices).
2. Runs the peer bench's LiteLLM proxy (``run.sh litellm``: 1 worker, no database, so no
   budget) against its fake OpenAI upstream, then Tollgate's proxy (uvicorn, 1 worker,
   httptools + uvloop, production settings, request gates on) through ``run.sh external``
   against the same fake upstream. Every Tollgate call is reserved and committed durably
   (one transaction each) before the client sees its end.
3. The peer bench prints, per concurrency and mode, the added latency (p50/p99, streaming:
   time to first byte), requests/s and the proxy's CPU per request; this script adds the
   CPU the PostgreSQL backends of the bench database spent per proxied call, and prints the
   two proxies side by side with the ratios (Tollgate / LiteLLM).

The peer bench needs its two venvs (``run.sh setup``; pinned LiteLLM 1.108.7, never a project
dependency). ``--skip-litellm`` measures Tollgate alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gate as gatebench  # noqa: E402 - the gate bench's database, env and CPU helpers

ROOT = HERE.parent
PRICE_DOC = {
    "fake-gpt": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 1.5e-07,
        "output_cost_per_token": 6e-07,
        "cache_read_input_token_cost": 7.5e-08,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
    }
}
SEED = """
import json
from billing.services.plans import tenant_plan_set
from billing.services.prices import price_catalog_import
from byok.models import TenantByokSettings
from controlplane.tenancy import services
from controlplane.tenancy.scopes import all_scopes
from enforcement.services.budgets import budget_create

tenant = services.tenant_create(slug="bench", name="Bench")
tenant_plan_set(tenant=tenant, plan="enterprise")
project = services.project_create(tenant=tenant, slug="bench", name="Bench")
budget_create(tenant=tenant, project=project, limit_micros=10**15, name="bench")
TenantByokSettings.objects.create(tenant=tenant, platform_providers=["openai"])
_, key = services.api_key_issue(
    tenant=tenant, name="bench", scopes=list(all_scopes()), project=project, environment="prod"
)
price_catalog_import(text={doc!r}, source="bench")
print("SEED" + json.dumps({{"key": key}}))
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_peer = next(
        (
            p
            for p in (
                ROOT.parent / "shared" / "peer-bench",
                ROOT.parent.parent / "shared" / "peer-bench",
            )
            if p.exists()
        ),
        ROOT.parent / "shared" / "peer-bench",
    )
    parser.add_argument("--peer-bench", type=Path, default=default_peer)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "tollgate-peerbench"
    )
    parser.add_argument("--db-name", default="tollgate_bench_llm")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    )
    parser.add_argument("--n", type=int, default=1000, help="proxied requests per (C, mode)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--conc", default="1,8,32")
    parser.add_argument("--modes", default="nonstream,stream")
    parser.add_argument(
        "--quiet-max-wait",
        type=float,
        default=45.0,
        help="seconds the peer bench waits for an idle machine before each level",
    )
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args(argv)


def peer_env(args) -> dict:
    env = dict(os.environ)
    env.update(
        WORK=str(args.work),
        N=str(args.n),
        ROUNDS=str(args.rounds),
        WARMUP=str(args.warmup),
        CONC=args.conc,
        MODES=args.modes,
    )
    return env


def run_peer(args, *command, env=None) -> None:
    result = subprocess.run(
        ["bash", str(args.peer_bench / "run.sh"), *command],
        cwd=args.work,
        env=env or peer_env(args),
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"run.sh {' '.join(command)} failed ({result.returncode})")


def start_tollgate(args, env: dict, port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "controlplane.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        args.log_level,
        "--lifespan",
        "on",
    ]
    log = open(args.work / "logs" / "tollgate.log", "w")  # noqa: SIM115 - closed with the process
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
    )
    deadline = time.monotonic() + 60
    import socket

    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"uvicorn exited with {server.returncode}; see {log.name}")
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
    gatebench.stop_server(server)
    sys.exit("uvicorn did not become healthy within 60 s")


def main(argv=None) -> int:
    args = parse_args(argv)
    (args.work / "logs").mkdir(parents=True, exist_ok=True)
    (args.work / "results").mkdir(parents=True, exist_ok=True)
    if not (args.work / "toolvenv" / "bin" / "python").exists():
        run_peer(args, "setup")
    if not args.skip_litellm:
        run_peer(
            args,
            "litellm",
            str(args.peer_bench / "config.yaml"),
            "1",
            "litellm-w1",
            "--",
            "--quiet-max-wait",
            str(args.quiet_max_wait),
        )

    gatebench.recreate_database(args.db_name)
    with tempfile.TemporaryDirectory() as metrics_dir:
        env = gatebench.production_env(args, metrics_dir)
        env.update(
            BYOK_PROVIDER_BASE_URLS="openai=http://127.0.0.1:18901",
            LLM_PLATFORM_KEYS="openai=sk-fake-upstream-dummy",
            LLM_EGRESS_ALLOWED_HOSTS="127.0.0.1",
            DB_POOL_MAX_SIZE="16",
        )
        gatebench.run_manage(env, "migrate", "--noinput")
        seeded = gatebench.run_manage(env, "shell", stdin=SEED.format(doc=json.dumps(PRICE_DOC)))
        key = json.loads(seeded.split("SEED", 1)[1])["key"]
        port = gatebench.free_port()
        server = start_tollgate(args, env, port)
        try:
            before = gatebench.cpu_snapshot(server.pid, args.db_name)
            run_peer(
                args,
                "external",
                "tollgate-w1",
                "--",
                "--quiet-max-wait",
                str(args.quiet_max_wait),
                env={
                    **peer_env(args),
                    "PROXY_URL": f"http://127.0.0.1:{port}/v1",
                    "PROXY_MODEL": "fake-gpt",
                    "PROXY_KEY": key,
                    "PROXY_PID": str(server.pid),
                },
            )
            after = gatebench.cpu_snapshot(server.pid, args.db_name)
        finally:
            gatebench.stop_server(server)
            if not args.keep_db:
                gatebench.drop_database(args.db_name)
    db_cpu = gatebench.cpu_used(before, after)["db"]
    report(args, db_cpu)
    return 0


def _proxied(results: dict, warmup: int) -> int:
    """Calls that went through the proxy: each (C, mode) ran its rounds plus the warm-up."""
    total = 0
    for row in results["results"]:
        proxy = row["proxy"]
        total += int(proxy.get("n_ok", 0)) + int(proxy.get("n_err", 0)) + warmup
    return total


def report(args, db_cpu: float) -> None:
    paths = [args.work / "results" / f"{label}.json" for label in ("litellm-w1", "tollgate-w1")]
    paths = [p for p in paths if p.exists()]
    print("\n=== Tollgate vs LiteLLM: same run, same machine, same fake upstream ===")
    summarize = args.peer_bench / "summarize.py"
    subprocess.run([sys.executable, str(summarize), *map(str, paths)], check=False)
    tollgate = json.loads(paths[-1].read_text())
    calls = _proxied(tollgate, args.warmup)
    if calls:
        print(
            f"PostgreSQL backends of the bench database: {db_cpu:.1f} s CPU over {calls} "
            f"proxied calls = {db_cpu / calls * 1000:.2f} ms per call (reserve + commit)"
        )
    if len(paths) == 2:
        litellm = json.loads(paths[0].read_text())
        by = {
            label: {(r["concurrency"], r["mode"]): r for r in data["results"]}
            for label, data in (("litellm", litellm), ("tollgate", tollgate))
        }
        print(
            "\n| C | mode | added p50 Tollgate / LiteLLM | CPU/req Tollgate / LiteLLM | req/s Tollgate / LiteLLM |"
        )
        print("|---|---|---|---|---|")
        for key in sorted(by["tollgate"]):
            t, peer = by["tollgate"][key], by["litellm"].get(key)
            if peer is None:
                continue
            metric = "ttfb_ms" if key[1] == "stream" else "total_ms"
            ta, la = t["added"].get(metric, {}).get("p50"), peer["added"].get(metric, {}).get("p50")
            tc, lc = (
                t["proxy"].get("proxy_cpu_ms_per_req"),
                peer["proxy"].get("proxy_cpu_ms_per_req"),
            )
            print(
                f"| {key[0]} | {key[1]} | {ta:.1f} / {la:.1f} ms ({ta / la:.2f}x) "
                f"| {tc:.1f} / {lc:.1f} ms ({tc / lc:.2f}x) "
                f"| {t['proxy']['rps']:.0f} / {peer['proxy']['rps']:.0f} |"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"paths": [str(p) for p in paths], "db_cpu_s": db_cpu})
        )


if __name__ == "__main__":
    sys.exit(main())
