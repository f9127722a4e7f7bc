"""One place that says what a database error means: infrastructure, our timeout, or the input.

The gate's fail mode may answer only for ``unavailable`` (and for the decision deadline that
Tollgate itself set, a ``timeout`` inside the decision); a ``client`` error is the request's
fault and is a 4xx with a code; ``integrity`` is a constraint; ``other`` is a bug and never
fails open.
"""

from __future__ import annotations

from django.db import utils as django_db

UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"
INTEGRITY = "integrity"
CLIENT = "client"
OTHER = "other"

# SQLSTATEs (PostgreSQL appendix A) that mean the server or the connection is not usable.
_UNAVAILABLE_STATES = frozenset(
    {
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
        "53000",  # insufficient_resources
        "53100",  # disk_full
        "53200",  # out_of_memory
        "58000",  # system_error
        "58030",  # io_error
    }
)
_TIMEOUT_STATES = frozenset({"57014", "55P03"})  # query_canceled (statement_timeout), lock


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver error behind a Django database error, if any."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def classify_database_error(exc: BaseException) -> str:
    """``unavailable`` | ``timeout`` | ``integrity`` | ``client`` | ``other``."""
    state = _sqlstate(exc)
    if state is not None:
        if state.startswith("08") or state in _UNAVAILABLE_STATES:
            return UNAVAILABLE
        if state in _TIMEOUT_STATES:
            return TIMEOUT
        if state.startswith("23"):
            return INTEGRITY
        if state.startswith("22"):  # data exception: bad value, encoding, NUL, out of range
            return CLIENT
        return OTHER
    if isinstance(exc, django_db.IntegrityError):
        return INTEGRITY
    if isinstance(exc, django_db.DataError):
        # psycopg refuses some values before they reach the server (e.g. NUL in text).
        return CLIENT
    if isinstance(exc, django_db.OperationalError | django_db.InterfaceError):
        # No SQLSTATE: the driver could not talk to the server (refused, reset, closed).
        return UNAVAILABLE
    return OTHER
