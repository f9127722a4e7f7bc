"""Bound a block of test code in wall-clock time: a hang fails the test instead of the run."""

from __future__ import annotations

import contextlib
import signal
import threading


class TookTooLong(AssertionError):
    pass


@contextlib.contextmanager
def time_bound(seconds: float, what: str = "example"):
    """Raise ``TookTooLong`` in the main thread after ``seconds`` (SIGALRM; pure-Python loops,
    such as the issue's line-mapping hang, are interrupted between bytecodes)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; callers there get the bound
        return

    def _expired(signum, frame):
        raise TookTooLong(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
