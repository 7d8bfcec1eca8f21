"""The one clock that hosts compare: the database's.

Leases (ledger claims, the beat lock) are written and judged in SQL with the database's own
``now``; a worker's heartbeat is stamped with it too, and measures how far the worker's own
clock is off (``clock_offset_seconds``): a worker more than CLOCK_SKEW_WARN_SECONDS off says so
in its log, in /healthz and in a metric. These are the few statements that need the clock as
SQL text rather than Django's ``Now()``.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

# The database's current time, and the same as seconds since the epoch; "%%" because the
# statements that use them take parameters.
_NOW_SQL = {
    "postgresql": "clock_timestamp()",
    "sqlite": "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')",
}
_EPOCH_SQL = {
    "postgresql": "EXTRACT(EPOCH FROM clock_timestamp())",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def now_sql(connection: BaseDatabaseWrapper) -> str:
    """SQL for the database's current time, as a timestamp."""
    return _NOW_SQL[connection.vendor]


def epoch_sql(connection: BaseDatabaseWrapper) -> str:
    """SQL for the database's current time, in seconds since the epoch."""
    return _EPOCH_SQL[connection.vendor]
