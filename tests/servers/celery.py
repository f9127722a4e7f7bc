"""Celery worker and beat processes for chaos runs (production settings, private servers)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.servers.gunicorn import ROOT, stop_process

CELERY = str(Path(sys.executable).with_name("celery"))


def _start(env: dict[str, str], args: list[str], name: str) -> tuple[subprocess.Popen, str]:
    log_path = tempfile.mktemp(prefix=f"tollgate-{name}-", suffix=".log")  # noqa: S306
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [CELERY, "-A", "controlplane", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, log_path


def start_worker(env: dict[str, str], *, pool: str = "solo", name: str = "w1"):
    """A worker whose tasks run in its own process (``solo``), so SIGKILL stops a task dead."""
    return _start(
        env,
        [
            "worker",
            "--pool",
            pool,
            "--loglevel",
            "WARNING",
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        f"worker-{name}",
    )


def start_beat(env: dict[str, str], *, name: str = "b1"):
    state = tempfile.mkdtemp(prefix=f"tollgate-beat-{name}-")
    return _start(
        env,
        [
            "beat",
            "--loglevel",
            "WARNING",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile",
            os.path.join(state, "beat.pid"),
        ],
        f"beat-{name}",
    )


stop = stop_process
