"""Concurrency tests open many connections at once: run them one at a time across xdist workers."""

from __future__ import annotations

import fcntl
import os
import tempfile

import pytest


@pytest.fixture(autouse=True)
def one_heavy_test_at_a_time():
    """An exclusive file lock, so two xdist workers never hold 2 x 64 connections together."""
    name = os.environ.get("DATABASE_URL", "default").rsplit("/", 1)[-1] or "default"
    path = os.path.join(tempfile.gettempdir(), f"tollgate-concurrency-{name}.lock")
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
