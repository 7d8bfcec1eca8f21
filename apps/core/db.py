"""Writes that need not wait for the disk.

A durable commit waits for PostgreSQL to flush its log to disk: 1 to 3 ms on a busy disk, more
than the rest of a heartbeat. A worker's heartbeat and its metrics counters lose nothing that
matters in a database crash (the next beat or flush writes them again), so they commit without
waiting (``synchronous_commit`` off for their transaction alone). The ledger, business rows and
task outcomes keep durable commits.

A single statement needs no transaction of its own for it: ``unflushed_statement`` sets it from
within the statement (one round trip instead of BEGIN, SET, the statement and COMMIT).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def unflushed_commit() -> Iterator[None]:
    """A transaction whose commit returns before PostgreSQL flushes it to disk (elsewhere: a
    plain transaction). A crash of the database within a moment of it may lose it; a later
    durable commit by anyone makes it durable too."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def unflushed_statement(statement: str) -> str:
    """`statement`, one INSERT or UPDATE ending in a RETURNING list and run in autocommit, as a
    statement whose commit returns before PostgreSQL flushes it to disk (elsewhere: unchanged).
    ``set_config(..., true)`` lasts until the statement's own commit, which reads it; the
    RETURNING list names the setting so that PostgreSQL evaluates it."""
    if connection.vendor != "postgresql":
        return statement
    prefix = "WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true) AS setting)"
    return f"{prefix} {statement}, (SELECT setting FROM unflushed)"  # noqa: S608 (our SQL)
