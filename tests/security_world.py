"""A small deployment for the security tests: tickets and memos, a department tree, one
user per role, on a real database (SQLite file or PostgreSQL).

The deployment is written as metadata files and compiled like any project, so the roles
under test are the roles a consultant would write.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from formwork.metadata import compile_project, load_project
from formwork.metadata.model import App
from formwork.metadata.project import Project
from formwork.plugins import HookRegistry, load_plugins
from formwork.records import Actor, RecordService
from formwork.security import RolePolicy, load_actor
from formwork.security.accounts import Accounts
from formwork.storage import Schema, build_schema, make_engine, migrate

FILES = {
    "metadata/ticket.yaml": """
        kind: entity
        name: ticket
        title_field: title
        fields:
          title: {type: string, required: true, max_length: 200}
          department: {type: link, to: department, default: $user.department}
          owner: {type: link, to: user}
          secret_note: string
          budget: {type: decimal, digits: [12, 2]}
          lines: {type: table, entity: ticket_line}
        actions:
          escalate: {hook: tickets.escalate}
    """,
    "metadata/ticket_line.yaml": """
        kind: entity
        name: ticket_line
        fields:
          item: {type: string, required: true}
          quantity: integer
    """,
    "metadata/memo.yaml": """
        kind: entity
        name: memo
        title_field: text
        fields:
          text: {type: string, required: true}
    """,
    "metadata/roles/reader.yaml": """
        kind: role
        name: reader
        grants:
          ticket: {actions: [read], rows: all, hidden: [secret_note]}
          memo: {actions: [read], rows: own}
    """,
    "metadata/roles/author.yaml": """
        kind: role
        name: author
        grants:
          ticket: {actions: [create, read, update, delete], rows: "owner == $user", read_only: [budget]}
          memo: {actions: [create, read, update, delete], rows: own}
    """,
    "metadata/roles/dept.yaml": """
        kind: role
        name: dept
        grants:
          ticket: {actions: [read, update], rows: department, hidden: [secret_note], read_only: [title, lines]}
          memo: {actions: [read], rows: department}
    """,
    "metadata/roles/head.yaml": """
        kind: role
        name: head
        inherits: [author]
        grants:
          ticket: {actions: [read, export, report], rows: department_tree, hidden: [secret_note]}
          memo: {actions: [read], rows: department_tree}
    """,
    "metadata/roles/overseer.yaml": """
        kind: role
        name: overseer
        grants:
          ticket: {actions: [read], rows: department_tree}
          memo: {actions: [read], rows: "department_tree" }
    """,
    "metadata/roles/named.yaml": """
        kind: role
        name: named
        grants:
          ticket: {actions: [read], rows: "title == $user.username or title == $user.full_name"}
    """,
    "metadata/roles/escalator.yaml": """
        kind: role
        name: escalator
        grants:
          ticket: {actions: [read, escalate], rows: all}
    """,
}
PLUGIN = '''
from formwork.plugins import hook


@hook("tickets.escalate")
def escalate(record, ctx):
    return None
'''
# username -> (roles, department code)
PEOPLE = {
    "alice": (("author",), "SALES"),
    "bob": (("dept",), "SALES"),
    "carol": (("head",), "HQ"),
    "dave": (("reader",), "OPS"),
    "erin": (("escalator",), "EAST"),
    "root": (("admin",), "HQ"),
}
# code -> (name, parent code)
DEPARTMENTS = {"HQ": ("Head office", None), "SALES": ("Sales", "HQ"), "EAST": ("Sales East", "SALES"), "OPS": ("Operations", None)}
PASSWORD = "correct horse"


def write_project(root: Path, database_url: str) -> Path:
    """The deployment's files under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "formwork.yaml").write_text(
        f"name: helpdesk\nmetadata: [metadata]\nplugins: [plugins]\ndatabase: {database_url}\nsecret_key: test-secret-key\n", "utf-8")
    (root / "plugins").mkdir(exist_ok=True)
    (root / "plugins" / "tickets.py").write_text(PLUGIN, "utf-8")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return root


class Clock:
    """A clock the tests move by hand (``clock.now += timedelta(...)``)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    """The compiled deployment on a migrated database with departments and people."""

    project: Project
    app: App
    schema: Schema
    engine: sa.Engine
    hooks: HookRegistry
    records: RecordService
    accounts: Accounts
    departments: dict[str, int]
    users: dict[str, int]
    clock: Clock

    def actor(self, username: str) -> Actor:
        """The actor of an active user, as a request would load it."""
        user_id = self.users.get(username) or self.accounts.require_user(username)
        with self.engine.connect() as conn:
            actor = load_actor(conn, self.app, self.schema, user_id)
        assert actor is not None
        return actor

    def ticket(self, title: str, owner: str | None, department: str, **values: Any) -> dict[str, Any]:
        """A ticket written by the system."""
        given = {"title": title, "department": self.departments[department], **values}
        if owner is not None:
            given["owner"] = self.users[owner]
        return self.records.create("ticket", given, Actor.system(), "seed")

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).mappings()]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of the tables a write could touch."""
        names = ["ticket", "ticket_line", "memo", "fw_user", "fw_department", "fw_user_role", "fw_audit", "fw_token",
                 "fw_security_event", "fw_session"]
        return {name: self.rows(name) for name in names}


def build_world(root: Path, database_url: str, people: dict[str, tuple[tuple[str, ...], str]] | None = None,
                passwords: bool = False) -> World:
    """Write, compile and migrate the deployment, then create its departments and people
    through ``Accounts`` (with ``passwords``, each with password ``PASSWORD``: scrypt is
    slow on purpose, so only the login tests ask for it)."""
    project = load_project(write_project(root, database_url), environ={})
    hooks = load_plugins(project.plugin_dirs, project.display)
    app = compile_project(project, hooks)
    engine = make_engine(database_url)
    migrate(engine, app)
    schema = build_schema(app)
    clock = Clock()
    records = RecordService(app, schema, engine, hooks, clock=clock, policy=RolePolicy(app, schema.tables, engine, clock))
    accounts = Accounts(records, clock=clock)
    departments: dict[str, int] = {}
    for code, (name, parent) in DEPARTMENTS.items():
        departments[code] = accounts.create_department(name, code=code, parent=parent)["id"]
    users: dict[str, int] = {}
    for username, (roles, department) in (people if people is not None else PEOPLE).items():
        users[username] = accounts.create_user(username, None, department=department, roles=roles, full_name=username.title())["id"]
    if passwords:
        # real scrypt, with a small work factor: a login costs milliseconds instead of 0.2 s
        user_table = schema.tables["user"]
        with engine.begin() as conn:
            conn.execute(sa.update(user_table).values(password_hash=generate_password_hash(PASSWORD, method="scrypt:1024:8:1")))
    return World(project, app, schema, engine, hooks, records, accounts, departments, users, clock)
