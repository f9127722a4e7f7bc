"""The gate's PostgreSQL functions, kept as ``.sql`` files next to this module.

Migrations install them with ``install`` (``CREATE OR REPLACE``); a change to a file ships with
a new migration that calls ``install`` again. ``tests/enforcement/test_gate_sql_files.py``
checks that the functions installed in the database are exactly the files.
"""

from __future__ import annotations

import re
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent
# file -> function name; the order they are installed in
FUNCTIONS = {"gate_prepare.sql": "tollgate_gate_prepare", "gate_write.sql": "tollgate_gate_write"}
_BODY = re.compile(r"\$fn\$(.*)\$fn\$", re.DOTALL)


def source(filename: str) -> str:
    return (SQL_DIR / filename).read_text(encoding="utf-8")


def body(filename: str) -> str:
    """The function body of a file (what PostgreSQL keeps as ``pg_proc.prosrc``)."""
    match = _BODY.search(source(filename))
    if match is None:
        raise ValueError(f"{filename}: no $fn$-quoted body")
    return match.group(1)


def install(schema_editor) -> None:
    """Create or replace every function from its file (PostgreSQL only; SQLite has none)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for filename in FUNCTIONS:
        schema_editor.execute(source(filename), None)
