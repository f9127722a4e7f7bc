"""Fault-injection tests: the production app (gunicorn config + production settings) against
private PostgreSQL and Redis servers that the tests stop, fill and restart."""

from __future__ import annotations

import pytest

from tests.servers.app import migrate_and_seed, production_env
from tests.servers.gunicorn import gunicorn_server
from tests.servers.postgres import private_postgres, private_redis

# One xdist worker runs them all, one after the other (each starts servers of its own).
pytestmark = pytest.mark.xdist_group("faults")

APP_WORKERS = 2
APP_THREADS = 4


class Stack:
    def __init__(self, pg, redis, base, log_path, seed, env):
        self.pg, self.redis, self.base, self.log_path, self.seed, self.env = (
            pg,
            redis,
            base,
            log_path,
            seed,
            env,
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed['key']}"}

    def server_log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()


@pytest.fixture(scope="package")
def stack():
    with private_postgres(max_connections=16) as pg, private_redis() as redis:
        env = production_env(
            pg.url(),
            redis.url,
            WEB_CONCURRENCY=str(APP_WORKERS),
            GUNICORN_THREADS=str(APP_THREADS),
            DB_POOL_TIMEOUT_SECONDS="2",
            DB_STATEMENT_TIMEOUT_SECONDS="2",
            REQUEST_TIMEOUT_SECONDS="20",
        )
        seed = migrate_and_seed(env, deadline_ms=3000)
        with gunicorn_server(env) as (base, _process, log_path):
            yield Stack(pg, redis, base, log_path, seed, env)
