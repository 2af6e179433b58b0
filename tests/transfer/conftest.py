"""Fixtures of the import/export tests: the expenses deployment, migrated on a real SQLite
file and a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from transfer_deployment import DEPARTMENTS, FILES, Deployment, write_files

from formwork.records import Actor


@pytest.fixture
def deployment(tmp_path: Path, db_url: str) -> Iterator[Deployment]:
    """The expenses deployment with three departments and a user ``alice``."""
    root = tmp_path / "expenses"
    write_files(root, FILES)
    deployment = Deployment(root, db_url)
    for name in DEPARTMENTS:
        deployment.records.create("department", {"name": name}, Actor.system(), "cli")
    deployment.records.create("user", {"username": "alice", "full_name": "Alice Wu"}, Actor.system(), "cli")
    yield deployment
    deployment.engine.dispose()
