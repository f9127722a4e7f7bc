"""controlplane.core.dberrors: real PostgreSQL errors land in the right kind (the one place the
gate's fail mode and the 503 mapping ask)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from controlplane.core.dberrors import classify_database_error
from tests.servers.gunicorn import free_port
from tests.servers.postgres import private_postgres

pytestmark = pytest.mark.django_db


def _error_of(sql: str, params=None) -> DatabaseError:
    with pytest.raises(DatabaseError) as exc, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return exc.value


@pytest.mark.parametrize(
    ("sql", "params", "kind"),
    [
        ("SELECT 'x'::int", None, "client"),  # invalid text representation
        ("SELECT 32768::smallint", None, "client"),  # numeric out of range
        ("SELECT %s::text", ["a\x00b"], "client"),  # NUL (refused by the driver)
        ("SELECT convert_from('\\xff'::bytea, 'UTF8')", None, "client"),  # bad encoding
        ("SET LOCAL statement_timeout = 10; SELECT pg_sleep(1)", None, "timeout"),
        ("SELECT 1 FROM no_such_table", None, "other"),
        ("SELECT pg_terminate_backend(pg_backend_pid())", None, "unavailable"),
    ],
    ids=["text", "range", "nul", "encoding", "statement-timeout", "bug", "admin-shutdown"],
)
def test_real_errors_are_classified(sql, params, kind):
    assert classify_database_error(_error_of(sql, params)) == kind
    if kind == "unavailable":
        connection.close()  # the test's own backend was terminated


def test_unique_violation_is_integrity(tenant):
    from tests import factories

    factories.make_project(tenant, "twice")
    with pytest.raises(DatabaseError) as exc, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tenancy_project (id, tenant_id, slug, name, created_at, updated_at) "
            "SELECT 'prj_dup', tenant_id, slug, name, now(), now() FROM tenancy_project "
            "WHERE slug = 'twice'"
        )
    assert classify_database_error(exc.value) == "integrity"


def test_refused_and_too_many_clients_are_unavailable():
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(f"postgres://postgres@127.0.0.1:{free_port()}/x", connect_timeout=2)
    assert classify_database_error(refused.value) == "unavailable"
    with private_postgres(max_connections=2) as pg:
        held = [psycopg.connect(pg.url()), psycopg.connect(pg.url())]
        with pytest.raises(psycopg.OperationalError) as full:
            psycopg.connect(pg.url(), connect_timeout=5)
        for conn in held:
            conn.close()
    assert "too many clients" in str(full.value)
    assert classify_database_error(full.value) == "unavailable"
