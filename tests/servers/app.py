"""The production settings (TOLLGATE_ENV=production) pointed at private servers, and a seed.

Fault-injection tests run the app exactly as deployed: docker/gunicorn.conf.py, production
settings, the connection pool, with test-only secrets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.servers.gunicorn import ROOT


def production_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        "TOLLGATE_ENV": "production",
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECRET_KEY": "test-only-secret-key-not-for-production-use-0123456789",
        "API_KEY_PEPPER": "test-only-pepper-not-for-production-use-0123456789",
        "LEDGER_SIGNING_KEY": "dGVzdC1vbmx5LWxlZGdlci1zaWduaW5nLWtleS0zMmI=",
        "SIGNING_KEY_ENCRYPTION_KEY": "dGVzdC1vbmx5LXNpZ25pbmcta2V5LWVuY3J5cHRpb24=",
        "BYOK_KEKS": "1:dGVzdC1vbmx5LWJ5b2sta2VrLXZlcnNpb24tMS0zMmI=",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def migrate_and_seed(env: dict[str, str], **seed_args) -> dict:
    """Migrate the private database and create a tenant, project, budgets, credits and a key."""
    manage(env, "migrate", "--noinput", "-v0")
    result = subprocess.run(
        [sys.executable, "-m", "tests.servers.seed", json.dumps(seed_args)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"seed failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
