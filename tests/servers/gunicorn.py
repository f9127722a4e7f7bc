"""Run the production gunicorn config (docker/gunicorn.conf.py) on a free port, for tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docker" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn_server(env: dict[str, str], *, ready_path: str = "/healthz", timeout: float = 60):
    """Yield (base_url, process, log_path); the server is stopped (SIGTERM, then SIGKILL)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="tollgate-gunicorn-")
    metrics_dir = os.path.join(workdir, "metrics")
    os.makedirs(metrics_dir)
    log_path = os.path.join(workdir, "server.log")
    full_env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "PYTHONPATH": str(ROOT),
        **env,
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(gunicorn), "--config", str(CONFIG), "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {Path(log_path).read_text()[-3000:]}")
            try:
                if httpx.get(base + ready_path, timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn not ready: {Path(log_path).read_text()[-3000:]}")
            time.sleep(0.1)
        yield base, process, log_path
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen, *, hard: bool = False) -> None:
    """Stop a process this run started, by its own pid: SIGTERM (SIGKILL when ``hard``, or
    when it does not exit within 20 s)."""
    if process.poll() is not None:
        return
    if hard:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)
