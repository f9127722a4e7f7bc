"""Start N threads together and collect what each returned or raised."""

from __future__ import annotations

import threading

from django.db import connection


def run_threads(count: int, work) -> list:
    """Run ``work(i)`` on ``count`` threads released together; each result or raised exception.

    Every thread closes its own database connection when done.
    """
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def runner(index: int) -> None:
        try:
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
