"""The example deployment's roles, enforced: every role × entity × action through
RecordService (SQLite file and PostgreSQL), checked against the grants as metadata states
them, and every row rule of the example running in SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from formwork.metadata import compile_project, load_project
from formwork.metadata.model import ADMIN_ROLE
from formwork.plugins import load_plugins
from formwork.records import PermissionDenied, RecordNotFound, RecordQuery, RecordService
from formwork.security import RolePolicy, load_actor
from formwork.security.accounts import Accounts
from formwork.security.grants import entity_actions
from formwork.storage import build_schema, make_engine, migrate

MISSING = 999_999


@pytest.fixture
def example(example_project: Path, db_url: str):
    project = load_project(example_project, environ={"DATABASE_URL": db_url})
    hooks = load_plugins(project.plugin_dirs, project.display)
    app = compile_project(project, hooks)
    engine = make_engine(db_url)
    migrate(engine, app)
    schema = build_schema(app)
    records = RecordService(app, schema, engine, hooks, policy=RolePolicy(app, schema.tables, engine))
    accounts = Accounts(records)
    accounts.create_department("Sales", code="S")
    actors = {}
    for role in sorted(app.roles):
        accounts.create_user(f"user_{role}", None, roles=[role], department="S")
        with engine.connect() as conn:
            actors[role] = load_actor(conn, app, schema, accounts.user_id(conn, f"user_{role}"))
    yield app, records, actors, engine
    engine.dispose()


def granted(app, role: str, entity: str) -> set[str]:
    """The actions metadata grants ``role`` on ``entity``, following ``inherits`` by hand."""
    seen: set[str] = set()
    todo, actions = [role], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in app.roles:
            continue
        seen.add(name)
        if name == ADMIN_ROLE:
            return set(entity_actions(app, entity))
        grant = app.roles[name].grants.get(entity)
        actions |= set(grant.actions) if grant else set()
        todo.extend(app.roles[name].inherits)
    return actions


def probe(records: RecordService, actor, entity: str, action: str) -> bool:
    """True when the service lets ``actor`` past the permission check for ``action``
    (on a record that does not exist, so nothing is written)."""
    try:
        if action == "read":
            records.get(entity, MISSING, actor)
        elif action == "update":
            records.update(entity, MISSING, {}, actor, "api", 1)
        elif action == "delete":
            records.delete(entity, MISSING, actor, "api")
        else:
            records.policy.authorize(action, entity, actor, "api", None)
            return True
    except PermissionDenied:
        return False
    except RecordNotFound:
        return True
    raise AssertionError("a missing record was found")


def test_every_role_entity_and_action_of_the_example(example):
    """One test (migrating the example is the slow part): the action matrix, then a list
    and a count as each role, so every row rule of the example runs in SQL."""
    app, records, actors, engine = example
    checked = 0
    for role, actor in actors.items():
        for entity in sorted(app.entities):
            if app.entities[entity].is_child:
                continue
            allowed = granted(app, role, entity)
            for action in entity_actions(app, entity):
                assert probe(records, actor, entity, action) == (action in allowed), (role, entity, action)
                checked += 1
    assert checked > 500
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM fw_audit WHERE entity NOT IN ('user', 'department')")).scalar_one() == 0
    for role, actor in actors.items():
        for entity in sorted(app.entities):
            if "read" in granted(app, role, entity) and not app.entities[entity].is_child:
                records.list(entity, actor, RecordQuery(limit=5))
                records.count(entity, actor, RecordQuery())
