"""Gunicorn settings for the Tollgate web container (``gunicorn -c docker/gunicorn.conf.py``).

Tunables come from the environment; see docs/deploy.md for the table.
"""

from __future__ import annotations

import json
import os
import shutil
import time

from gunicorn.glogging import Logger


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


MAX_DEFAULT_WORKERS = 8

wsgi_app = "controlplane.wsgi:application"
bind = ["0.0.0.0:8000"]  # all interfaces inside the container; publishing the port decides exposure
worker_class = "gthread"
workers = _env_int("WEB_CONCURRENCY", min(2 * _cpu_count() + 1, MAX_DEFAULT_WORKERS))
threads = _env_int("GUNICORN_THREADS", 4)
# The arbiter's heartbeat timeout; the gthread main loop heartbeats, so it does not bound a
# request. Requests are bounded by the watchdog below (REQUEST_TIMEOUT_SECONDS, default 30).
timeout = _env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 100)
# Heartbeat files on tmpfs: a disk-backed /tmp can stall workers (see gunicorn's FAQ).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# No runtime control socket: nothing uses it and $HOME may not be writable.
control_socket_disable = True

loglevel = os.environ.get("LOG_LEVEL", "info").lower()
errorlog = "-"  # stderr, like the application's own JSON log lines
accesslog = "-"  # stdout, one JSON object per line (see JsonAccessLogger)


def _utc_timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class JsonAccessLogger(Logger):
    """Gunicorn logger whose access lines are single-line JSON instead of Apache format."""

    def access(self, resp, req, environ, request_time):
        if not self.cfg.accesslog:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        try:
            status = int(atoms["s"])
        except (TypeError, ValueError):
            status = atoms["s"]
        line = {
            "ts": _utc_timestamp(),
            "level": "info",
            "logger": "gunicorn.access",
            "event": "http_access",
            "remote_addr": atoms["h"],
            "forwarded_for": atoms.get("{x-forwarded-for}i"),
            "method": atoms["m"],
            "path": atoms["U"],
            "query": atoms["q"] or None,
            "protocol": atoms["H"],
            "status": status,
            "bytes": atoms["B"],
            "duration_ms": round(request_time.seconds * 1000 + request_time.microseconds / 1000, 2),
            "request_id": atoms.get("{x-request-id}o"),
            "user_agent": atoms["a"],
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(line, separators=(",", ":"), default=str))
        except Exception:
            self.exception("Failed to write the access log line")


logger_class = JsonAccessLogger


def on_starting(server):
    """Start from an empty Prometheus multiprocess directory (stale files skew counters)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full):
            shutil.rmtree(full)
        else:
            os.remove(full)


def post_worker_init(worker):
    """Start the per-request time bound (controlplane/core/watchdog.py)."""
    from controlplane.core import watchdog

    watchdog.install(worker)


def pre_request(worker, req):
    watchdog = getattr(worker, "request_watchdog", None)
    if watchdog is not None:
        watchdog.begin(f"{req.method} {req.path}")


def post_request(worker, req, environ, resp):
    watchdog = getattr(worker, "request_watchdog", None)
    if watchdog is not None:
        watchdog.end()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the multiprocess metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
