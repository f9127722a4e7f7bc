"""One classification of database errors (controlplane.core.dberrors), on real driver errors."""

from __future__ import annotations

import psycopg
import pytest
from django.db import DataError, IntegrityError, OperationalError, connection
from rest_framework.test import APIRequestFactory

from controlplane.core.dberrors import classify_database_error
from controlplane.core.exceptions import problem_exception_handler


def _real_error(sql: str, params=None):
    try:
        with connection.cursor() as cursor, connection.constraint_checks_disabled():
            cursor.execute(sql, params)
    except Exception as exc:  # the wrapped driver error, as views see it
        return exc
    raise AssertionError("no error")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sql", "params", "kind"),
    [
        ("SELECT 1/0", None, "client"),  # 22012 division_by_zero: a data exception
        ("SELECT %s::text", ["a\x00b"], "client"),  # refused by the driver (NUL)
        ("SELECT 'x'::int", None, "client"),  # 22P02
        ("SELECT 9223372036854775807::bigint + 1", None, "client"),  # 22003
        ("SELECT * FROM no_such_table", None, "other"),  # 42P01: a bug, not an outage
        ("SET LOCAL statement_timeout = 1; SELECT pg_sleep(0.05)", None, "timeout"),
        (
            "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = 'admin_shutdown'; END $$",
            None,
            "unavailable",
        ),
        (
            "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = 'unique_violation'; END $$",
            None,
            "integrity",
        ),
    ],
)
def test_real_errors_are_classified(sql, params, kind):
    assert classify_database_error(_real_error(sql, params)) == kind


def test_a_refused_connection_is_unavailable():
    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/x", connect_timeout=2)
    except psycopg.OperationalError as driver_error:
        wrapped = OperationalError(str(driver_error))
        wrapped.__cause__ = driver_error
        assert classify_database_error(wrapped) == "unavailable"
    else:  # pragma: no cover
        raise AssertionError("port 1 accepted a connection")


def test_django_classes_without_a_driver_error():
    assert classify_database_error(IntegrityError("x")) == "integrity"
    assert classify_database_error(DataError("x")) == "client"


@pytest.mark.django_db
def test_a_refused_value_anywhere_is_a_400_not_a_500():
    exc = _real_error("SELECT %s::text", ["a\x00b"])
    request = APIRequestFactory().get("/")
    response = problem_exception_handler(exc, {"request": request})
    assert response.status_code == 400 and response.data["code"] == "INVALID_VALUE"
