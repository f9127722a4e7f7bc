"""Per-request time bound for gunicorn's threaded workers (docker/gunicorn.conf.py wires it).

gunicorn's ``gthread`` worker heartbeats from its main loop, so its ``timeout`` never notices one
request thread spinning forever: a stuck thread holds its slot until the process dies. This
watchdog runs one thread per worker process and, for a request older than
``REQUEST_TIMEOUT_SECONDS`` (default 30):

1. logs ``request_timeout`` and counts ``request_timeouts_total``;
2. raises ``RequestTimedOut`` inside the request's thread (this ends a pure-Python loop: the
   request answers 503 ``REQUEST_TIMEOUT`` and its transaction rolls back);
3. asks the worker to stop gracefully (``worker.alive = False``, what ``max_requests`` does):
   other requests finish, gunicorn starts a fresh worker in its place;
4. if the thread is still stuck ``REQUEST_TIMEOUT_GRACE_SECONDS`` later (blocked in C code, where
   no exception can land), logs ``request_timeout_kill`` and ends the process at once
   (``os._exit``); the arbiter replaces it.

Database work is bounded separately, below this limit, by PostgreSQL's ``statement_timeout``
(``DB_STATEMENT_TIMEOUT_SECONDS``), so a slow query ends as a clean 503 first.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import time

from prometheus_client import Counter

log = logging.getLogger("tollgate.watchdog")

REQUEST_TIMEOUTS = Counter(
    "request_timeouts_total",
    "Requests that ran past REQUEST_TIMEOUT_SECONDS and were ended (their worker replaced).",
    ["action"],  # "interrupted" (exception delivered) or "killed" (worker process ended)
)


class RequestTimedOut(Exception):
    """Raised inside a request thread that ran past REQUEST_TIMEOUT_SECONDS."""


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _raise_in(thread_id: int) -> bool:
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(RequestTimedOut)
    )
    return done == 1


class RequestWatchdog:
    """Tracks in-flight requests of one worker process and ends those past the limit."""

    def __init__(
        self, worker, *, timeout: float, grace: float, exit=os._exit, raise_in=_raise_in
    ) -> None:
        self.worker = worker
        self._raise_in = raise_in
        self.timeout = timeout
        self.grace = grace
        self._exit = exit
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[float, str]] = {}  # thread id -> (started, request)
        self._expired: dict[int, float] = {}  # thread id -> when the exception was sent
        self._thread = threading.Thread(target=self._run, name="request-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def begin(self, what: str) -> None:
        with self._lock:
            self._inflight[threading.get_ident()] = (time.monotonic(), what)

    def end(self) -> None:
        with self._lock:
            ident = threading.get_ident()
            self._inflight.pop(ident, None)
            self._expired.pop(ident, None)

    def check(self, now: float | None = None) -> None:
        """One pass over the in-flight requests (the thread calls it periodically)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            items = list(self._inflight.items())
        for ident, (started, what) in items:
            sent = self._expired.get(ident)
            if sent is None and now - started > self.timeout:
                self._expired[ident] = now
                REQUEST_TIMEOUTS.labels(action="interrupted").inc()
                log.error(
                    "request_timeout: %s ran %.1f s (limit %.1f s); ending it and replacing "
                    "worker %s",
                    what,
                    now - started,
                    self.timeout,
                    os.getpid(),
                )
                self._raise_in(ident)
                self.worker.alive = False  # graceful replacement, like max_requests
            elif sent is not None and now - sent > self.grace:
                REQUEST_TIMEOUTS.labels(action="killed").inc()
                log.critical(
                    "request_timeout_kill: %s still running %.1f s after it was ended; "
                    "exiting worker %s",
                    what,
                    now - sent,
                    os.getpid(),
                )
                for handler in logging.getLogger().handlers + log.handlers:
                    # A closed stream (a test's captured stderr) must not stop the exit.
                    with contextlib.suppress(OSError, ValueError):
                        handler.flush()
                self._exit(70)

    def _run(self) -> None:
        interval = max(0.05, min(1.0, self.timeout / 4))
        while True:
            time.sleep(interval)
            try:
                self.check()
            except Exception:  # the watchdog must survive anything a check meets
                log.exception("request_watchdog_error")


def install(worker) -> RequestWatchdog | None:
    """Start a watchdog for ``worker`` (gunicorn ``post_worker_init``); 0 disables it."""
    timeout = _env_float("REQUEST_TIMEOUT_SECONDS", 30.0)
    if timeout <= 0:
        return None
    watchdog = RequestWatchdog(
        worker, timeout=timeout, grace=_env_float("REQUEST_TIMEOUT_GRACE_SECONDS", 5.0)
    )
    worker.request_watchdog = watchdog
    watchdog.start()
    return watchdog
