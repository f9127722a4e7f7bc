"""Shared fixtures; PostgreSQL/Redis detection (skip with a reason, or fail when REQUIRE_SERVICES=1)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests import factories

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _needs_db(item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(item.get_closest_marker("django_db")) or bool(
        names & {"db", "transactional_db", "django_db_setup", "live_server"}
    )


def _needs_redis(item) -> bool:
    return bool(item.get_closest_marker("redis")) or "redis_client" in getattr(
        item, "fixturenames", ()
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "redis: needs Redis")
    config.addinivalue_line(
        "markers", "both_stores: run once per gate store (SQL functions, ORM): see gate_store"
    )
    # Tenants' default policy allows 250 ms per decision. Test machines are shared and
    # loaded (xdist workers, 64-thread tests): give the default policy a deadline that
    # measures correctness, not speed. Tests about deadlines publish their own.
    from enforcement.policy.schema import DEFAULT_DOCUMENT

    DEFAULT_DOCUMENT["decision_deadline_ms"] = 5000


def pytest_collection_modifyitems(config, items):
    db_url = settings.DATABASES["default"]
    pg_ok = db_url["ENGINE"].endswith("sqlite3") or _reachable(
        f"postgres://{db_url.get('HOST') or '127.0.0.1'}:{db_url.get('PORT') or 5432}", 5432
    )
    redis_ok = bool(settings.REDIS_URL) and _reachable(settings.REDIS_URL, 6379)
    missing = [name for name, ok in (("PostgreSQL", pg_ok), ("Redis", redis_ok)) if not ok]
    if not missing:
        return
    if REQUIRE_SERVICES:
        raise pytest.UsageError(
            f"REQUIRE_SERVICES=1 but {', '.join(missing)} is unreachable "
            f"(DATABASE_URL / REDIS_URL). Start them (see README) and rerun."
        )
    for item in items:
        if not pg_ok and _needs_db(item):
            item.add_marker(
                pytest.mark.skip(
                    reason="PostgreSQL unreachable; set REQUIRE_SERVICES=1 to fail instead"
                )
            )
        elif not redis_ok and _needs_redis(item):
            item.add_marker(
                pytest.mark.skip(reason="Redis unreachable; set REQUIRE_SERVICES=1 to fail instead")
            )


# The gate's two stores (docs/decisions/0012-one-gate-algorithm-two-stores.md): PostgreSQL's SQL
# functions (production) and the ORM (the SQLite demo). Every gate, concurrency, fault and
# state-machine test module is marked ``both_stores`` and runs on each.
GATE_STORES = ("sql", "orm")


@pytest.fixture(autouse=True)
def gate_store(request):
    """The gate store of a ``both_stores`` test (``GATE_SQL_FUNCTIONS``); None elsewhere."""
    store = getattr(request, "param", None)
    if store is None:
        yield None
        return
    previous = settings.GATE_SQL_FUNCTIONS
    settings.GATE_SQL_FUNCTIONS = store == "sql"
    try:
        yield store
    finally:
        settings.GATE_SQL_FUNCTIONS = previous


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def tenant(db):
    return factories.make_tenant("acme")


@pytest.fixture
def other_tenant(db):
    return factories.make_tenant("globex")


@pytest.fixture
def api_key(tenant):
    """(ApiKey, plaintext) with every registered scope on tenant 'acme'."""
    return factories.make_api_key(tenant)


@pytest.fixture
def client_a(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    return client


@pytest.fixture
def client_b(other_tenant) -> APIClient:
    _, plaintext = factories.make_api_key(other_tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def pytest_generate_tests(metafunc):
    """Parametrise ``isolation_case`` from the test class's ``isolation_cases`` (see api_contracts)
    and ``gate_store`` of ``both_stores`` tests."""
    if "isolation_case" in metafunc.fixturenames:
        cases = getattr(metafunc.cls, "isolation_cases", [])
        metafunc.parametrize("isolation_case", cases, ids=[case.name for case in cases])
    if metafunc.definition.get_closest_marker("both_stores"):
        metafunc.parametrize("gate_store", GATE_STORES, indirect=True)


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker on this test database, on a queue of its own (the tasks this test
    sends go there); stopped after the test."""
    from django.db import connection

    from tests.servers.celery import worker_on_test_database

    with worker_on_test_database(connection.settings_dict) as worker:
        yield worker
