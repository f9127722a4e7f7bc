"""The gate's PostgreSQL functions installed in the database are exactly ``enforcement/sql/``."""

from __future__ import annotations

import pytest
from django.db import connection

from enforcement import sql

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("filename", "function"), list(sql.FUNCTIONS.items()))
def test_installed_function_equals_its_file(filename, function):
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function])
        rows = cursor.fetchall()
    assert len(rows) == 1, f"{function}: {len(rows)} definitions installed"
    assert rows[0][0] == sql.body(filename)


def test_every_sql_file_is_installed():
    assert sorted(p.name for p in sql.SQL_DIR.glob("*.sql")) == sorted(sql.FUNCTIONS)
