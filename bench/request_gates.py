#!/usr/bin/env python
"""What the request gates add to one request, measured in-process (figures, not asserts).

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/request_gates.py --iterations 5000

Seeds a tenant and an API key in a transaction that is rolled back at the end, then times, per
call: each gate in its steady state (lifecycle and billing answered from the per-process cache,
protection one Redis round trip), the three together, and the same request through Django's
test client with the gates off and on (alternating blocks, same process, same database), so
the difference is what a request pays for the gates. Prints p50/p99 in microseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings_test")


def _timed(fn, iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def _line(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2] * 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6
    return f"{label:<34} p50 {p50:8.1f} µs   p99 {p99:8.1f} µs   mean {statistics.mean(samples) * 1e6:8.1f} µs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--blocks", type=int, default=6, help="alternating off/on blocks")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import transaction
    from django.test import Client

    from billing.gates import checks
    from billing.services.plans import tenant_plan_set
    from controlplane.tenancy import services
    from controlplane.tenancy.scopes import all_scopes

    for name in ("KEY", "TENANT", "GLOBAL"):
        setattr(settings, f"PROTECTION_{name}_RATE", 1e6)
        setattr(settings, f"PROTECTION_{name}_BURST", 10**9)
    settings.PROTECTION_KEY_PREFIX = f"bench:{os.getpid()}:gate:"
    with transaction.atomic():
        tenant = services.tenant_create(slug=f"gatebench{os.getpid()}", name="Gate bench")
        tenant_plan_set(tenant=tenant, plan="enterprise")
        api_key, plaintext = services.api_key_issue(
            tenant=tenant, name="bench", scopes=list(all_scopes())
        )
        run = checks.GateRun()
        n = args.iterations
        checks.lifecycle_check(run, tenant.id)  # warm the caches and the Lua script
        checks.billing_check(run, tenant.id, metered=True)
        checks.protection_check(run, tenant.id, api_key.id)
        print(f"{n} calls each; Redis {settings.PROTECTION_REDIS_URL}")
        print(
            _line("lifecycle (cached)", _timed(lambda: checks.lifecycle_check(run, tenant.id), n))
        )
        print(
            _line(
                "billing (cached, metered)",
                _timed(lambda: checks.billing_check(run, tenant.id, metered=True), n),
            )
        )
        print(
            _line(
                "protection (1 Redis round trip)",
                _timed(lambda: checks.protection_check(run, tenant.id, api_key.id), n),
            )
        )

        client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        off, on = [], []
        per_block = max(n // args.blocks, 1)
        for block in range(args.blocks * 2):
            settings.REQUEST_GATES_ENABLED = block % 2 == 1
            samples = _timed(lambda: client.get("/api/v1/projects"), per_block)
            (on if settings.REQUEST_GATES_ENABLED else off).extend(samples)
        print(_line("GET /api/v1/projects, gates off", off))
        print(_line("GET /api/v1/projects, gates on", on))
        delta_p50 = (sorted(on)[len(on) // 2] - sorted(off)[len(off) // 2]) * 1e6
        print(f"added by the gates per request (p50): {delta_p50:+.1f} µs")
        transaction.set_rollback(True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
