"""The one place that says what kind of database failure an exception is.

``classify_database_error(exc)`` answers one of:

- ``"unavailable"``: the database cannot be reached or refuses work (connection refused or lost,
  too many clients, admin/crash shutdown, starting up, pool exhausted);
- ``"timeout"``: a statement or lock wait was cancelled (statement_timeout, lock_timeout,
  query canceled, a deadlock or serialization victim): retrying later can succeed;
- ``"integrity"``: a constraint refused the write (UNIQUE, CHECK, FK, NOT NULL);
- ``"client"``: a value the caller sent cannot be stored or compared (bad encoding, numeric out
  of range, invalid text representation, NUL in text, value too long for an index);
- ``"other"``: anything else (a bug, a missing table, a syntax error).

Only the first two are infrastructure faults: they become 503 ``DATABASE_UNAVAILABLE``. The
gate's fail mode is narrower (``enforcement.services.gate``): ``"unavailable"``, and a
``"timeout"`` only where it is the decision deadline the gate set itself. ``"client"`` is the
caller's problem (400), never the fail mode; ``"integrity"`` is a constraint (a 409 unless it is
the idempotency key); ``"other"`` is a bug and never fails open.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["unavailable", "timeout", "integrity", "client", "other"]
UNAVAILABLE: Kind = "unavailable"
TIMEOUT: Kind = "timeout"
INTEGRITY: Kind = "integrity"
CLIENT: Kind = "client"
OTHER: Kind = "other"

# SQLSTATE classes and codes (PostgreSQL appendix A).
_UNAVAILABLE_CLASSES = ("08", "53", "58")  # connection exception, insufficient resources, system
_UNAVAILABLE_CODES = {"57P01", "57P02", "57P03", "57P04", "57P05"}  # shutdowns, cannot connect
# Cancellations by a timeout (statement, lock, idle-in-transaction) and the victims of a
# deadlock or serialization failure: retrying later can succeed.
DEADLINE_CODES = frozenset({"57014", "55P03"})  # what SET LOCAL statement/lock_timeout raises
_TIMEOUT_CODES = {*DEADLINE_CODES, "25P03", "40001", "40P01"}
_CLIENT_CODES = {"54000"}  # program_limit_exceeded: e.g. a value too long for a btree index


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        # Django wraps driver errors with `raise ... from`; an error raised while handling
        # another (a rollback that fails after a lost connection) carries it as context.
        exc = exc.__cause__ or exc.__context__


def _sqlstate(exc: BaseException) -> str | None:
    for item in _chain(exc):
        state = getattr(item, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
    return None


def _by_sqlstate(state: str) -> Kind | None:
    if state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_CODES:
        return UNAVAILABLE
    if state in _TIMEOUT_CODES:
        return TIMEOUT
    if state.startswith("23"):
        return INTEGRITY
    if state.startswith("22") or state in _CLIENT_CODES:
        return CLIENT
    return None


def _by_type(exc: BaseException) -> Kind:
    """No SQLSTATE (client-side errors: connect failures, lost connections, NUL bytes)."""
    names = {type(item).__name__ for item in _chain(exc)}
    if "PoolTimeout" in names or "TooManyRequests" in names:
        return "unavailable"
    if "IntegrityError" in names:
        return "integrity"
    if "DataError" in names:
        return "client"
    text = " ".join(str(item) for item in _chain(exc)).lower()
    if "database is locked" in text:  # SQLite's busy timeout
        return "timeout"
    if "OperationalError" in names or "InterfaceError" in names:
        return "unavailable"
    return "other"


def classify_database_error(exc: BaseException) -> Kind:
    """What kind of database failure ``exc`` (a Django or driver exception) is."""
    state = _sqlstate(exc)
    if state:
        kind = _by_sqlstate(state)
        if kind is not None:
            return kind
        return "other"
    return _by_type(exc)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver error behind ``exc`` (None for client-side errors)."""
    return _sqlstate(exc)


def is_infrastructure(kind: str) -> bool:
    """The database (not the request) is at fault: answer 503 and let the caller retry."""
    return kind in ("unavailable", "timeout")
