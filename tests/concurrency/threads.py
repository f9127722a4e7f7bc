"""Start N threads together and collect what each returned or raised."""

from __future__ import annotations

import threading
import time

from django.db import OperationalError, connection


def _connect(deadline_seconds: float = 30.0) -> None:
    """Open this thread's connection before the start line.

    On a PostgreSQL server shared with other test runs, ``max_connections`` may be briefly
    exhausted; waiting for a free slot (polling, bounded) keeps that infrastructure limit from
    masquerading as a result. In CI the first attempt succeeds.
    """
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            connection.close()
            time.sleep(0.05)


def run_threads(count: int, work) -> list:
    """Run ``work(i)`` on ``count`` threads released together; each result or raised exception.

    Every thread closes its own database connection when done.
    """
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def runner(index: int) -> None:
        try:
            _connect()
            barrier.wait(timeout=60)
            results[index] = work(index)
        except BaseException as exc:  # collected and inspected by the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a worker thread hung (deadlock?)"
    return results
