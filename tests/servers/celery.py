"""Celery worker and beat processes: for chaos runs (production settings, private servers), and
one worker on the test database for tests that need a real worker (``worker_on_test_database``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
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


def start_worker(
    env: dict[str, str], *, pool: str = "solo", name: str = "w1", queue: str | None = None
):
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
            *(["--queues", queue] if queue else []),
        ],
        f"worker-{name}",
    )


@contextlib.contextmanager
def worker_on_test_database(database: dict):
    """A real worker (solo pool) on the test database ``database`` (a connection's
    settings_dict) and the suite's Redis broker, on a queue of its own: this process sends its
    tasks there for the duration, so no other test's worker (on another test database) takes
    them, and it takes no stale task of another test. Yields the process (``log_path`` set)."""
    from controlplane.celery import app

    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        "DJANGO_SETTINGS_MODULE": "controlplane.settings_test",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
            **{k: database[k] or "" for k in ("USER", "HOST", "PORT", "NAME")}
        ),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue  # read by the router at every send
    worker, log_path = start_worker(env, name=queue, queue=queue)
    worker.log_path = Path(log_path)
    try:
        yield worker
    finally:
        app.conf.task_default_queue = previous
        stop_process(worker)


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
