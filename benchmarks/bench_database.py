"""The database a benchmark runs on: a SQLite file, or a fresh PostgreSQL database dropped after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


@contextmanager
def fresh_database(pg: str | None, folder: Path, tag: str) -> Iterator[str]:
    """A SQLite file ``folder/<tag>.db``, or a new database ``fw_bench_<tag>_<pid>`` on the
    server of ``pg``, dropped when the block ends (also after an error)."""
    if pg is None:
        yield f"sqlite:///{folder / f'{tag}.db'}"
        return
    server = sa.engine.make_url(pg)
    name = f"fw_bench_{tag}_{os.getpid()}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
