"""``create_many`` of an entity without hooks or child tables: rows validated and written a
chunk at a time, with the same records, numbers, audit rows, events and errors as one
create per row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.metadata.model import App, ChoiceOption, Entity, Field, NumberPattern
from formwork.records import Actor, RecordInvalid, RecordService, bulk, journal
from formwork.records import service as service_module
from formwork.storage import build_schema, make_engine

NOW = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)


def _entity(name: str, *fields: Field, **options: Any) -> Entity:
    return Entity(name=name, table=options.pop("table", name), fields={f.name: f for f in fields}, **options)


USER = _entity(
    "user",
    Field("username", "string", required=True, unique=True, max_length=150),
    Field("department", "link", to="department"),
    Field("manager", "link", to="user"),
    table="fw_user",
    builtin=True,
)
DEPARTMENT = _entity("department", Field("name", "string", required=True), Field("parent", "link", to="department"), table="fw_department", builtin=True, tree=True)
ITEM = _entity(
    "stock_item",
    Field("number", "string", max_length=20, unique=True),
    Field("code", "string", required=True, unique=True, max_length=12),
    Field("quantity", "integer", min=0),
    Field("price", "decimal", digits=(12, 2), min=0),
    Field("value", "decimal", digits=(14, 2), compute="quantity * price"),
    Field("category", "choice", options=(ChoiceOption("a"), ChoiceOption("b"))),
    Field("shelf", "integer"),
    Field("received_on", "date", default="=today()", default_is_expression=True),
    Field("department", "link", to="department", required=True),
    unique_together=(("category", "shelf"),),
    number=NumberPattern(field="number", pattern="SI-{####}"),
)


class Place:
    def __init__(self, service: RecordService, engine: sa.Engine, department: int) -> None:
        self.service, self.engine, self.department = service, engine, department
        self.tables = service.schema.metadata.tables

    def rows(self, table: str) -> list[dict[str, Any]]:
        t = self.tables[table]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The records, audit rows, events and number counters: compared around a refused write."""
        with self.engine.connect() as conn:
            sequences = [dict(r) for r in conn.execute(sa.select(self.tables["fw_number_sequence"])).mappings()]
        return {"sequences": sequences} | {name: self.rows(name) for name in ("stock_item", "fw_audit", "fw_event")}


@pytest.fixture
def place(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Place]:
    monkeypatch.setattr(bulk, "CHUNK", 4)  # several chunks with few rows
    app = App(name="stock", entities={e.name: e for e in (USER, DEPARTMENT, ITEM)})
    schema = build_schema(app)
    engine = make_engine(db_url)
    schema.metadata.create_all(engine)
    service = RecordService(app, schema, engine, clock=lambda: NOW)
    department = service.create("department", {"name": "Stores"}, Actor.system(), "seed")["id"]
    yield Place(service, engine, department)
    engine.dispose()


def _item(n: int, department: int, **extra: Any) -> dict[str, Any]:
    return {"code": f"C{n:03d}", "quantity": str(n), "price": "1.5", "department": department, **extra}


def test_entity_without_hooks_or_tables_takes_the_batch_path():
    assert bulk.takes_batch_path(App(name="x", entities={}), ITEM)
    assert not bulk.takes_batch_path(App(name="x", entities={}), DEPARTMENT)  # parent links to its own entity


def test_create_many_writes_each_record_with_one_audit_row_and_one_event(place):
    actor = Actor.system()
    rows = [_item(n, place.department, category="a" if n % 2 else None, shelf=n) for n in range(10)]

    assert place.service.create_many("stock_item", rows, actor, "import") == 10

    items = place.rows("stock_item")
    assert [i["code"] for i in items] == [f"C{n:03d}" for n in range(10)]
    assert [i["number"] for i in items] == [f"SI-{n:04d}" for n in range(1, 11)]
    assert [i["value"] for i in items] == [Decimal("1.5") * n for n in range(10)]
    assert {i["received_on"] for i in items} == {date(2026, 11, 21)}
    assert {(i["version"], i["created_by"]) for i in items} == {(1, actor.user_id)}
    audits, events = place.rows("fw_audit"), place.rows("fw_event")
    # the department of the fixture was created before: one row each of its own
    audits, events = [a for a in audits if a["entity"] == "stock_item"], [e for e in events if e["entity"] == "stock_item"]
    assert len(audits) == len(events) == 10
    for item, audit, event in zip(items, audits, events, strict=True):
        record = place.service.get("stock_item", item["id"], actor)
        changes = journal.changes_between(None, record, list(record))
        assert (audit["record_id"], audit["action"], audit["channel"], audit["user_id"]) == (item["id"], "create", "import", actor.user_id)
        assert audit["changes"] == changes
        assert audit["changes"]["price"] == {"old": None, "new": "1.50"}  # as stored, not as given
        assert (event["record_id"], event["event"], event["attempts"], event["delivered_at"]) == (item["id"], "stock_item.created", 0, None)
        assert event["payload"] == journal.json_safe({"record": record, "changes": changes, "channel": "import", "user_id": actor.user_id})


def test_batch_records_equal_those_of_the_row_by_row_save(place, monkeypatch):
    actor = Actor.system()
    with monkeypatch.context() as patch:
        patch.setattr(service_module, "takes_batch_path", lambda app, entity: False)
        single = place.service.create("stock_item", _item(1, place.department, category="b", shelf=7), actor, "import")
    place.service.create_many("stock_item", [_item(2, place.department, category="b", shelf=8)], actor, "import")
    batch = place.service.get("stock_item", single["id"] + 1, actor)
    differ = {"id", "code", "number", "shelf", "quantity", "value"}
    assert {k: v for k, v in batch.items() if k not in differ} == {k: v for k, v in single.items() if k not in differ}
    audits = [a for a in place.rows("fw_audit") if a["entity"] == "stock_item"]
    assert set(audits[0]["changes"]) == set(audits[1]["changes"])


def test_a_bad_row_in_a_batch_reports_its_row_number_and_nothing_is_written(place):
    actor = Actor.system()
    place.service.create("stock_item", _item(0, place.department), actor, "import")
    before = place.snapshot()
    rows = [_item(n, place.department) for n in range(1, 11)]
    rows[2]["code"] = "C000"  # taken by a stored record
    rows[5]["department"] = 999_999  # no such department
    rows[7]["code"] = "C002"  # repeats row 1 of this batch
    rows[8]["quantity"] = "-1"
    rows[9].update(category="a", shelf=1)
    rows.append(_item(11, place.department, category="a", shelf=1))  # repeats the set of row 9

    with pytest.raises(RecordInvalid) as caught:
        place.service.create_many("stock_item", rows, actor, "import")

    assert [(e.row, e.field, e.code) for e in caught.value.errors] == [
        (2, "code", "unique"),
        (5, "department", "link"),
        (7, "code", "unique"),
        (8, "quantity", "min"),
        (10, "category", "unique"),
    ]
    assert caught.value.errors[0].message == "must be unique: another stock item already has 'C000'"
    assert place.snapshot() == before


def test_a_row_repeating_a_refused_row_is_not_a_repeat(place):
    rows = [_item(1, place.department, quantity="x"), _item(1, place.department), _item(1, place.department)]
    with pytest.raises(RecordInvalid) as caught:
        place.service.create_many("stock_item", rows, Actor.system(), "import")
    assert [(e.row, e.field, e.code) for e in caught.value.errors] == [(0, "quantity", "type"), (2, "code", "unique")]


def test_a_value_the_database_refuses_reports_the_row_and_writes_nothing(place, monkeypatch):
    actor = Actor.system()
    place.service.create("stock_item", _item(0, place.department), actor, "import")
    before = place.snapshot()
    # the check misses a value (as when a concurrent write takes it): the database refuses it
    monkeypatch.setattr(bulk.ChunkChecks, "taken", lambda self, fields, record: False)
    rows = [_item(1, place.department), _item(0, place.department), _item(2, place.department, quantity="-5")]

    with pytest.raises(RecordInvalid) as caught:
        place.service.create_many("stock_item", rows, actor, "import")

    assert [(e.row, e.field, e.code) for e in caught.value.errors] == [(1, "code", "unique")]
    assert place.snapshot() == before


def test_single_create_of_a_batch_entity_reports_errors_without_a_row(place):
    before = place.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        place.service.create("stock_item", _item(1, 999_999, category="a", shelf=10**20), Actor.system(), "api")
    assert [(e.row, e.field, e.code) for e in caught.value.errors] == [(None, "shelf", "range"), (None, "department", "link")]
    assert place.snapshot() == before
