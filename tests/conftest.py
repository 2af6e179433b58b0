"""Shared fixtures: real databases (a SQLite file and a PostgreSQL database per run).

``db_url`` is parametrised over both engines, so a test that takes it runs on
each. The PostgreSQL database is created at the start of the run and dropped at
its end. Set ``FORMWORK_TEST_PG`` to another server URL, or to ``off`` to run on
SQLite alone (CI never sets ``off``: there a missing server fails the run).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("FORMWORK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    if PG_SERVER == "off":
        yield None
        return
    name = f"formwork_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_SERVER).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _reset_postgres(url: str) -> None:
    """Drop every table of the test database so each test starts empty."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once as a SQLite file and once on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    server = request.getfixturevalue("pg_server_url")
    if server is None:
        pytest.skip("PostgreSQL disabled with FORMWORK_TEST_PG=off")
    _reset_postgres(server)
    return server


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A copy of the example deployment (the repository root's metadata) in a temporary folder."""
    target = tmp_path / "example"
    target.mkdir()
    for name in ("formwork.yaml",):
        shutil.copy(REPO / name, target / name)
    for folder in ("metadata", "plugins", "demo"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return target
