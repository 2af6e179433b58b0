"""make_engine: the settings the rest of Formwork relies on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from formwork.storage import make_engine


def test_sqlite_connections_enforce_links_use_wal_and_wait_for_locks(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000
    engine.dispose()


def test_ddl_inside_a_transaction_is_rolled_back(db_url):
    engine = make_engine(db_url)
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE scratch (id INTEGER PRIMARY KEY)"))
            raise RuntimeError("something failed after the DDL")
    with engine.connect() as conn:
        assert "scratch" not in sa.inspect(conn).get_table_names()
    engine.dispose()


def test_an_in_memory_sqlite_database_works():
    engine = make_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM t")).scalar_one() == 1
    engine.dispose()
