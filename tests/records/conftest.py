"""A small purchasing app for the RecordService tests, on a real SQLite file and PostgreSQL.

The App is built straight from the model dataclasses (as the metadata compiler would),
the tables with the storage stage, and hooks are registered in a real HookRegistry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.metadata.model import App, ChoiceOption, Entity, Field, NumberPattern, Workflow
from formwork.plugins import HookRegistry
from formwork.records import Actor, RecordService
from formwork.storage import Schema, build_schema, make_engine

NOW = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)


def field(name: str, type: str = "string", **options: Any) -> Field:
    if "options" in options:
        options["options"] = tuple(ChoiceOption(v) for v in options["options"])
    if isinstance(options.get("default"), str) and options["default"][:1] in ("=", "$"):
        options["default_is_expression"] = True
    return Field(name=name, type=type, **options)


def entity(name: str, *fields: Field, table: str | None = None, **options: Any) -> Entity:
    return Entity(name=name, table=table or name, fields={f.name: f for f in fields}, **options)


USER = entity(
    "user",
    field("username", required=True, unique=True, max_length=150),
    field("full_name"),
    field("email", "email"),
    field("department", "link", to="department"),
    field("manager", "link", to="user"),
    field("active", "boolean", default=True),
    table="fw_user",
    builtin=True,
)
DEPARTMENT = entity(
    "department",
    field("name", required=True),
    field("code", unique=True),
    field("parent", "link", to="department"),
    field("manager", "link", to="user"),
    table="fw_department",
    builtin=True,
    tree=True,
)
LINE = entity(
    "purchase_request_line",
    field("item", required=True, max_length=40),
    field("quantity", "integer", required=True, min=1),
    field("unit_price", "decimal", digits=(12, 2), required=True, min=0),
    field("amount", "decimal", digits=(14, 2), compute="quantity * unit_price"),
    is_child=True,
)
REQUEST_HOOKS = {
    "before_validate": "test.before_validate",
    "before_save": "test.before_save",
    "after_save": "test.after_save",
    "before_delete": "test.before_delete",
    "after_delete": "test.after_delete",
}
REQUEST = entity(
    "purchase_request",
    field("number", max_length=30, unique=True),
    field("title", required=True, max_length=20),
    field("department", "link", to="department", default="$user.department"),
    field("amount", "decimal", digits=(12, 2), min=0, max=1000000),
    field("currency", "choice", options=["CNY", "USD", "EUR"], default="CNY"),
    field("needed_by", "date", check="needed_by >= today()", message="must not be in the past"),
    field("requested_on", "date", default="=today()"),
    field("priority", "integer", min=1, max=5, default=3),
    field("contact", "email"),
    field("code", max_length=10, unique=True),
    field("urgent", "boolean", default=False),
    field("reason", "text", required_if="amount > 10000"),
    field("lines", "table", entity="purchase_request_line"),
    field("total", "decimal", digits=(14, 2), compute="sum(lines.amount)"),
    field("note", "string", validators=("test.no_shouting",)),
    title_field="title",
    number=NumberPattern(field="number", pattern="PR-{YYYY}-{####}"),
    hooks=REQUEST_HOOKS,
    has_status=True,
)
TICKET = entity(
    "ticket",
    field("subject", required=True),
    field("number", max_length=30),
    field("category", "string", max_length=20),
    field("seq", "integer"),
    field("opened_at", "datetime"),
    field("details", "json"),
    field("score", "integer", compute_hook="test.score"),
    field("locked", "string", read_only=True),
    field("reporter", "string", default="$user.full_name"),
    field("starts_on", "date"),
    field("ends_on", "date", check="ends_on >= starts_on", message="must be on or after the start"),
    unique_together=(("category", "seq"),),
    number=NumberPattern(field="number", pattern="T{YY}{MM}-{###}"),
)
FLOW = Workflow(
    name="request_flow",
    entity="purchase_request",
    states=("new", "approved"),
    initial="new",
    transitions=(),
)


def purchasing_app() -> App:
    entities = {e.name: e for e in (USER, DEPARTMENT, LINE, REQUEST, TICKET)}
    return App(name="purchasing", entities=entities, workflows={FLOW.name: FLOW})


@dataclass
class Hooks:
    """What the test hooks do; tests set the behaviours they need."""

    calls: list[tuple[str, dict[str, Any], Any]]
    behaviour: dict[str, Callable[[dict[str, Any], Any], Any]]

    def registry(self) -> HookRegistry:
        registry = HookRegistry()
        for name in (*REQUEST_HOOKS.values(), "test.no_shouting", "test.score"):
            registry.add(name, self._hook(name), "tests/records/conftest.py")
        return registry

    def _hook(self, name: str) -> Callable[[dict[str, Any], Any], Any]:
        def run(record: dict[str, Any], ctx: Any) -> Any:
            self.calls.append((name, dict(record), ctx))
            action = self.behaviour.get(name)
            return action(record, ctx) if action else None

        return run

    def names(self) -> list[str]:
        return [name for name, _record, _ctx in self.calls]


@dataclass
class World:
    service: RecordService
    engine: sa.Engine
    schema: Schema
    hooks: Hooks
    actor: Actor
    department_id: int

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(self.schema.metadata.tables[table])).scalar_one()

    def rows(self, table: str) -> list[dict[str, Any]]:
        t = self.schema.metadata.tables[table]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(t).order_by(t.c[next(iter(t.primary_key.columns)).name])).mappings()]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table: compared before and after a refused write."""
        return {name: self.rows(name) for name in sorted(self.schema.metadata.tables) if name != "fw_metadata_state"}


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    app = purchasing_app()
    schema = build_schema(app)
    engine = make_engine(db_url)
    schema.metadata.create_all(engine)
    hooks = Hooks(calls=[], behaviour={})
    service = RecordService(app, schema, engine, hooks=hooks.registry(), clock=lambda: NOW)
    system = Actor.system()
    department = service.create("department", {"name": "Purchasing", "code": "PUR"}, system, "seed")
    user = service.create("user", {"username": "alice", "full_name": "Alice Liddell", "department": department["id"]}, system, "seed")
    actor = Actor(user["id"], "alice", frozenset({"employee"}), department["id"])
    hooks.calls.clear()
    yield World(service, engine, schema, hooks, actor, department["id"])
    engine.dispose()
