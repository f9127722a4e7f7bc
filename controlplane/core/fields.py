"""Model fields shared by every app."""

from __future__ import annotations

from django.db import models


class CounterField(models.BigIntegerField):
    """A money counter that grows by additions and cannot overflow: ``numeric(38,0)``.

    A single amount is at most ``MAX_MICROS`` (10^17), but a period's ``spent`` is the sum of
    every commit into it, and spend that really happened must always be recorded: 93 commits of
    100 billion USD would overflow a 64-bit integer. 38 digits hold 10^21 such commits. Python
    sees a plain ``int`` either way. (SQLite, the demo database, keeps its 64-bit integer.)
    """

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "numeric(38,0)"
        return super().db_type(connection)

    def from_db_value(self, value, expression, connection):
        return None if value is None else int(value)
