"""One migrate at a time per database.

PostgreSQL: a transaction-level advisory lock, released by COMMIT or ROLLBACK, so a
crashed migrate never leaves a stale lock. SQLite: the migrate transaction starts
with ``BEGIN IMMEDIATE``, which takes the database's write lock (see engine.py);
here we only bound how long the second migrate waits for it.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

# The advisory lock key: "formwork" in ASCII, as a 64-bit integer.
ADVISORY_KEY = int.from_bytes(b"formwork", "big") & 0x7FFFFFFFFFFFFFFF
POLL_SECONDS = 0.2


class LockTimeout(Exception):
    """Another migrate held the lock for longer than we were willing to wait."""


def sqlite_wait(dbapi_connection: object, seconds: float) -> None:
    """Make ``BEGIN IMMEDIATE`` on this SQLite connection wait at most ``seconds`` for the lock."""
    dbapi_connection.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


def acquire_postgres(conn: sa.Connection, seconds: float) -> None:
    """Take the migrate lock inside the current transaction, waiting at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY}).scalar_one():
        if time.monotonic() >= deadline:
            raise LockTimeout()
        time.sleep(POLL_SECONDS)
