"""Engines with the settings Formwork relies on, for SQLite and PostgreSQL alike.

SQLite: the sqlite3 driver's legacy transaction handling never emits BEGIN before
DDL, so a CREATE/ALTER would commit on its own and a failed migration could not be
rolled back. We take over BEGIN (as SQLAlchemy's SQLite documentation describes in
"Enabling Non-Legacy SQLite Transactional Modes"), which makes DDL transactional.
A connection may ask for ``BEGIN IMMEDIATE`` (take the write lock at once) with the
``formwork_begin_immediate`` execution option; migrations do.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

# How long a SQLite statement waits for another writer's lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
BEGIN_IMMEDIATE = "formwork_begin_immediate"


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An Engine for ``url`` with Formwork's defaults.

    SQLite: foreign keys enforced, WAL journal (readers never block the writer), a busy
    timeout, and transactional DDL. PostgreSQL: connections checked before use and
    recycled, so a restarted server or a dropped idle connection does not surface as an
    error; every session in UTC. Extra keyword arguments go to ``sqlalchemy.create_engine``.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, **kwargs)
        _configure_sqlite(engine, in_memory=parsed.database in (None, "", ":memory:"))
        return engine
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": 1800}
    options.update(kwargs)
    engine = sa.create_engine(parsed, **options)
    _configure_postgresql(engine)
    return engine


def _configure_postgresql(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Times come back in UTC (as Formwork hands them out) whatever the server's zone:
        # nothing to convert per value. Committed, so the pool's first rollback keeps it.
        cursor = dbapi_connection.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.close()
        dbapi_connection.commit()


def _configure_sqlite(engine: sa.Engine, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # isolation_level None: the driver stops issuing (and skipping) BEGIN; on_begin does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL (a lasting property of the file, set once).

    Two processes opening a fresh file can race here; SQLite may then answer "database is
    locked" without waiting. The loser only needs the winner's result, so it checks again.
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError:
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            raise
