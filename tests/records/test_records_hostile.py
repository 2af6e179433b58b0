"""Hostile values through RecordService: each is a field error, never a database error,
and nothing is written. The limits come from the columns storage makes for each field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.metadata.model import App, ChoiceOption, Entity, Field
from formwork.records import Actor, RecordInvalid, RecordNotFound, RecordService
from formwork.storage import Schema, build_schema, make_engine

NOW = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
INT_RANGE = "must be between -2147483648 and 2147483647"


def fld(name: str, type: str = "string", **options: Any) -> Field:
    if "options" in options:
        options["options"] = tuple(ChoiceOption(v) for v in options["options"])
    return Field(name=name, type=type, **options)


def ent(name: str, *fields: Field, **options: Any) -> Entity:
    return Entity(name=name, table=options.pop("table", name), fields={f.name: f for f in fields}, **options)


SAMPLE = ent(
    "sample",
    fld("name"),
    fld("short", max_length=10),
    fld("body", "text"),
    fld("mail", "email"),
    fld("attachment", "file"),
    fld("kind", "choice", options=["a", "bb"]),
    fld("tag", "choice"),
    fld("count", "integer"),
    fld("small", "integer", min=-5, max=5),
    fld("price", "decimal"),
    fld("rate", "decimal", digits=(5, 3)),
    fld("on", "date"),
    fld("at", "datetime"),
    fld("flag", "boolean"),
    fld("data", "json"),
    fld("owner", "link", to="user"),
    fld("twice", "integer"),
    fld("doubled", "integer", compute="twice * 2"),
    fld("base", "decimal"),
    fld("third", "decimal", compute="base / 3"),
    fld("rows", "table", entity="sample_row"),
)
SAMPLE_ROW = ent("sample_row", fld("label"), fld("qty", "integer"), is_child=True)


def hostile_app() -> App:
    user = ent("user", fld("username", required=True, unique=True, max_length=150), table="fw_user", builtin=True)
    department = ent("department", fld("name", required=True), table="fw_department", builtin=True)
    entities = {e.name: e for e in (user, department, SAMPLE, SAMPLE_ROW)}
    return App(name="hostile", entities=entities)


@dataclass
class Hostile:
    service: RecordService
    engine: sa.Engine
    schema: Schema
    actor: Actor

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table: compared before and after a refused write."""
        found = {}
        with self.engine.connect() as conn:
            for name in sorted(self.schema.metadata.tables):
                table = self.schema.metadata.tables[name]
                order = [c for c in table.primary_key.columns]
                found[name] = [dict(r) for r in conn.execute(sa.select(table).order_by(*order)).mappings()]
        return found

    def refused(self, call: Any) -> list[tuple[str, str, str]]:
        """Run ``call``; return its (field, code, message) errors and check nothing changed."""
        before = self.snapshot()
        with pytest.raises(RecordInvalid) as caught:
            call()
        assert self.snapshot() == before
        return [(e.field, e.code, e.message) for e in caught.value.errors]

    def create_refused(self, values: dict[str, Any], channel: str = "screen") -> list[tuple[str, str, str]]:
        return self.refused(lambda: self.service.create("sample", values, self.actor, channel))


@pytest.fixture
def hostile(db_url: str) -> Iterator[Hostile]:
    app = hostile_app()
    schema = build_schema(app)
    engine = make_engine(db_url)
    schema.metadata.create_all(engine)
    service = RecordService(app, schema, engine, clock=lambda: NOW)
    user = service.create("user", {"username": "alice"}, Actor.system(), "seed")
    yield Hostile(service, engine, schema, Actor(user["id"], "alice", frozenset(), None))
    engine.dispose()


def _nested(levels: int) -> list[Any]:
    data: list[Any] = []
    for _ in range(levels - 1):
        data = [data]
    return data


def _cycle() -> dict[str, Any]:
    data: dict[str, Any] = {}
    data["self"] = data
    return data


# (values, the error (or list of errors) they give); one test walks them all to keep the suite fast
HOSTILE_CREATES = [
    ({"name": "x" * 256}, ("name", "max_length", "must be at most 255 characters")),
    ({"short": "x" * 11}, ("short", "max_length", "must be at most 10 characters")),
    ({"mail": "a@" + "b" * 250 + ".com"}, ("mail", "max_length", "must be at most 254 characters")),
    ({"attachment": "f" * 501}, ("attachment", "max_length", "must be at most 500 characters")),
    ({"kind": "c" * 41}, ("kind", "choice", "must be one of: a, bb")),
    ({"tag": "c" * 41}, ("tag", "max_length", "must be at most 40 characters")),
    ({"name": "a\x00b"}, ("name", "type", "must not contain NUL characters")),
    ({"body": "a\x00b"}, ("body", "type", "must not contain NUL characters")),
    ({"name": "a\ud800b"}, ("name", "type", "must be valid Unicode text")),
    ({"body": "\udfff"}, ("body", "type", "must be valid Unicode text")),
    ({"data": {"text": "a\x00b"}}, ("data", "type", "must not contain NUL characters")),
    ({"data": ["\ud800"]}, ("data", "type", "must be valid Unicode text")),
    ({"data": {"x": float("nan")}}, ("data", "type", "must be JSON data (text, numbers, lists, mappings)")),
    ({"data": [float("inf")]}, ("data", "type", "must be JSON data (text, numbers, lists, mappings)")),
    ({"data": _nested(101)}, ("data", "type", "must be JSON data nested at most 100 levels deep")),
    ({"data": _nested(5000)}, ("data", "type", "must be JSON data nested at most 100 levels deep")),
    ({"data": _cycle()}, ("data", "type", "must be JSON data nested at most 100 levels deep")),
    ({"data": {"x": {1, 2}}}, ("data", "type", "must be JSON data (text, numbers, lists, mappings)")),
    ({"count": 2**31}, ("count", "range", INT_RANGE)),
    ({"count": -(2**31) - 1}, ("count", "range", INT_RANGE)),
    ({"count": 10**30}, ("count", "range", INT_RANGE)),
    ({"count": "99999999999999999999"}, ("count", "range", INT_RANGE)),
    ({"count": Decimal("1e30")}, ("count", "range", INT_RANGE)),
    ({"count": True}, ("count", "type", "must be a whole number")),
    ({"count": {"value": 1}}, ("count", "type", "must be a whole number")),
    ({"count": [1]}, ("count", "type", "must be a whole number")),
    ({"count": float("inf")}, ("count", "type", "must be a whole number")),
    ({"count": float("nan")}, ("count", "type", "must be a whole number")),
    ({"count": Decimal("NaN")}, ("count", "type", "must be a whole number")),
    ({"count": "1" * 5000}, ("count", "type", "must be a whole number")),
    ({"small": 10**40}, ("small", "max", "must be at most 5")),
    ({"price": "NaN"}, ("price", "type", "must be a number")),
    ({"price": "-Infinity"}, ("price", "type", "must be a number")),
    ({"price": float("inf")}, ("price", "type", "must be a number")),
    ({"price": True}, ("price", "type", "must be a number")),
    ({"price": {"amount": 1}}, ("price", "type", "must be a number")),
    ({"price": "1e999999"}, ("price", "digits", "must have at most 16 digits before the decimal point")),
    ({"price": "-1e999999"}, ("price", "digits", "must have at most 16 digits before the decimal point")),
    ({"price": "0.001"}, ("price", "digits", "must have at most 2 decimal places")),
    ({"price": "1e-999999"}, ("price", "digits", "must have at most 2 decimal places")),
    ({"price": "12345678901234567"}, ("price", "digits", "must have at most 16 digits before the decimal point")),
    ({"price": "123456789012345678901234567890.123"}, ("price", "digits", "must have at most 2 decimal places")),
    ({"price": "1" * 5000}, ("price", "digits", "must have at most 16 digits before the decimal point")),
    ({"rate": "100.5"}, ("rate", "digits", "must have at most 2 digits before the decimal point")),
    ({"on": "0000-01-01"}, ("on", "type", "must be a date (YYYY-MM-DD)")),
    ({"on": "10000-01-01"}, ("on", "type", "must be a date (YYYY-MM-DD)")),
    ({"on": 20260101}, ("on", "type", "must be a date (YYYY-MM-DD)")),
    ({"on": {"year": 2026}}, ("on", "type", "must be a date (YYYY-MM-DD)")),
    ({"at": "9999-12-31T23:00:00-05:00"}, ("at", "type", "is out of the range of dates and times")),
    ({"at": "0001-01-01T01:00:00+05:00"}, ("at", "type", "is out of the range of dates and times")),
    ({"at": "10000-01-01T00:00:00"}, ("at", "type", "must be a date and time (YYYY-MM-DD HH:MM)")),
    ({"at": ["2026-01-01"]}, ("at", "type", "must be a date and time (YYYY-MM-DD HH:MM)")),
    ({"flag": 2}, ("flag", "type", "must be true or false")),
    ({"flag": {"x": True}}, ("flag", "type", "must be true or false")),
    ({"name": {"first": "a"}}, ("name", "type", "must be text")),
    ({"name": ["a"]}, ("name", "type", "must be text")),
    ({"kind": ["a"]}, ("kind", "type", "must be text")),
    ({"owner": 2**31}, ("owner", "type", "must be the id of a record")),
    ({"owner": 2**70}, ("owner", "type", "must be the id of a record")),
    ({"owner": {"id": 10**30}}, ("owner", "type", "must be the id of a record")),
    ({"owner": True}, ("owner", "type", "must be the id of a record")),
    ({"name": 10**5000}, ("name", "type", "must be text")),
    ({"name": float("nan")}, ("name", "type", "must be text")),
    ({"twice": 2**30}, ("doubled", "range", INT_RANGE)),
    (
        {"base": "1e999999"},
        [
            ("third", "compute", "could not be computed from the other fields"),
            ("base", "digits", "must have at most 16 digits before the decimal point"),
        ],
    ),
    ({"rows": {"label": "x"}}, ("rows", "type", "must be a list of rows")),
    ({"rows": ["x"]}, ("rows", "type", "must be a list of rows")),
    ({"rows": [{"label": "x" * 256}]}, ("rows[0].label", "max_length", "must be at most 255 characters")),
    ({"rows": [{"qty": 2**40}]}, ("rows[0].qty", "range", INT_RANGE)),
    ({"rows": [{"label": "\x00"}]}, ("rows[0].label", "type", "must not contain NUL characters")),
    ({"rows": [{"id": 1, "label": "x"}]}, ("rows[0].id", "row", "is not a row of this record (id 1)")),
    ({"rows": [{"label": "a"}, {"id": 2**70}]}, ("rows[1].id", "type", "must be the id of a row of this record")),
]


def test_each_hostile_value_is_a_field_error_and_nothing_is_written(hostile):
    got = [(values, hostile.create_refused(values)) for values, _expected in HOSTILE_CREATES]
    wrong = [(values, errors) for (values, errors), (_v, expected) in zip(got, HOSTILE_CREATES, strict=True) if errors != (expected if isinstance(expected, list) else [expected])]
    assert wrong == []


def test_values_at_the_column_limits_are_stored_and_read_back(hostile):
    values = {
        "name": "名" * 255,
        "mail": "a@" + "b" * 248 + ".com",
        "attachment": "f" * 500,
        "kind": "bb",
        "count": -(2**31),
        "small": 5,
        "price": "999999999999.99",
        "rate": "-99.999",
        "on": "9999-12-31",
        "at": "0001-01-01T00:00:00+00:00",
        "body": "emoji 🧾 and combining e\u0301 and RTL \u202e",
        "data": {"deep": _nested(99), "n": 2**70, "text": "🧾"},
        "rows": [],
    }
    saved = hostile.service.create("sample", values, hostile.actor, "import")
    again = hostile.service.get("sample", saved["id"], hostile.actor)
    assert (again["name"], again["count"], again["price"], again["rate"]) == ("名" * 255, -(2**31), Decimal("999999999999.99"), Decimal("-99.999"))
    assert (again["on"].isoformat(), again["at"], again["body"], again["data"]) == (
        "9999-12-31",
        datetime(1, 1, 1, tzinfo=UTC),
        values["body"],
        values["data"],
    )
    assert again["rows"] == []


def test_hostile_update_is_refused_and_the_record_kept(hostile):
    saved = hostile.service.create("sample", {"name": "ok", "rows": [{"label": "one", "qty": 1}]}, hostile.actor, "screen")
    update = hostile.service.update
    errors = hostile.refused(
        lambda: update("sample", saved["id"], {"count": 2**31, "name": "y" * 300, "rows": [{"id": saved["rows"][0]["id"], "qty": -(2**63)}]}, hostile.actor, "screen", saved["version"])
    )
    assert errors == [
        ("name", "max_length", "must be at most 255 characters"),
        ("count", "range", INT_RANGE),
        ("rows[0].qty", "range", INT_RANGE),
    ]
    assert hostile.service.get("sample", saved["id"], hostile.actor) == saved


def test_a_batch_with_one_hostile_row_writes_nothing(hostile):
    rows = [{"name": "fine"}, {"count": 10**20}, {"rows": [{"id": 5}]}]
    errors = hostile.refused(lambda: hostile.service.create_many("sample", rows, hostile.actor, "import"))
    assert errors == [("count", "range", INT_RANGE), ("rows[0].id", "row", "is not a row of this record (id 5)")]


def test_a_child_row_with_an_id_on_create_of_the_purchase_request_is_refused(world):
    before = world.snapshot()
    values = {"title": "Chairs", "lines": [{"id": 7, "item": "chair", "quantity": 1, "unit_price": "2"}]}
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("purchase_request", values, world.actor, "screen")
    assert [(e.field, e.code, e.message) for e in caught.value.errors] == [("lines[0].id", "row", "is not a row of this record (id 7)")]
    assert world.snapshot() == before


def test_a_computed_decimal_is_rounded_to_its_column(hostile):
    saved = hostile.service.create("sample", {"base": 1, "twice": 2}, hostile.actor, "screen")
    again = hostile.service.get("sample", saved["id"], hostile.actor)
    assert (saved["third"], again["third"], again["doubled"]) == (Decimal("0.33"), Decimal("0.33"), 4)


@pytest.mark.parametrize("record_id", [2**31, 2**70, -(2**63) - 1])
def test_an_id_no_column_holds_is_not_found(hostile, record_id):
    service, actor = hostile.service, hostile.actor
    before = hostile.snapshot()
    calls = [
        lambda: service.get("sample", record_id, actor),
        lambda: service.update("sample", record_id, {"name": "x"}, actor, "import", None),
        lambda: service.delete("sample", record_id, actor, "import"),
    ]
    for call in calls:
        with pytest.raises(RecordNotFound):
            call()
    assert hostile.snapshot() == before


def test_a_row_named_twice_in_one_update_is_refused(hostile):
    saved = hostile.service.create("sample", {"rows": [{"label": "one"}, {"label": "two"}]}, hostile.actor, "screen")
    first = saved["rows"][0]["id"]
    rows = [{"id": first, "qty": 1}, {"id": first, "qty": 2}]
    errors = hostile.refused(lambda: hostile.service.update("sample", saved["id"], {"rows": rows}, hostile.actor, "screen", saved["version"]))
    assert errors == [("rows[1].id", "row", f"repeats the row of an earlier line (id {first})")]


# (hook, what it sets, the errors): values a hook sets are typed and checked too
HOOK_CHANGES = [
    ("before_validate", {"priority": "7"}, [("priority", "max", "must be at most 5")]),
    ("before_validate", {"note": "\x00"}, [("note", "type", "must not contain NUL characters")]),
    ("before_validate", {"needed_by": "someday"}, [("needed_by", "type", "must be a date (YYYY-MM-DD)")]),
    ("before_validate", {"amount": 1e30}, [("amount", "max", "must be at most 1000000"), ("amount", "digits", "must have at most 10 digits before the decimal point"), ("reason", "required", "is required here")]),
    ("before_save", {"title": "x" * 21}, [("title", "max_length", "must be at most 20 characters")]),
    ("before_save", {"title": None}, [("title", "required", "is required")]),
    ("before_save", {"priority": 2**40}, [("priority", "range", INT_RANGE)]),
    ("before_save", {"amount": 1e30}, [("amount", "digits", "must have at most 10 digits before the decimal point")]),
    ("before_save", {"note": "\ud800"}, [("note", "type", "must be valid Unicode text")]),
    ("before_save", {"currency": "GBP"}, [("currency", "choice", "must be one of: CNY, USD, EUR")]),
    ("before_save", {"urgent": "perhaps"}, [("urgent", "type", "must be true or false")]),
    ("before_save", {"lines": [{"item": "i", "quantity": 2**40, "unit_price": 1}]}, [("lines[0].quantity", "range", INT_RANGE)]),
]


def test_hostile_values_a_hook_sets_are_field_errors_and_nothing_is_written(world):
    got = []
    for point, change, _errors in HOOK_CHANGES:
        world.hooks.behaviour = {f"test.{point}": lambda record, ctx, change=change: record.update(change)}
        before = world.snapshot()
        with pytest.raises(RecordInvalid) as caught:
            world.service.create("purchase_request", {"title": "A"}, world.actor, "screen")
        got.append((point, change, [(e.field, e.code, e.message) for e in caught.value.errors], world.snapshot() == before))
    assert got == [(point, change, errors, True) for point, change, errors in HOOK_CHANGES]


def test_text_a_before_save_hook_sets_is_stored_typed(world):
    world.hooks.behaviour = {"test.before_save": lambda record, ctx: record.update(amount="12.5", needed_by="2027-01-31")}
    saved = world.service.create("purchase_request", {"title": "A"}, world.actor, "screen")
    again = world.service.get("purchase_request", saved["id"], world.actor)
    assert (again["amount"], again["needed_by"].isoformat()) == (Decimal("12.50"), "2027-01-31")


def test_a_batch_of_plain_records_with_hostile_values_writes_nothing(hostile):
    rows = [{"username": "bob"}, {"username": "u" * 151}, {"username": "a\x00b"}, {"username": {"$ne": ""}}]
    before = hostile.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        hostile.service.create_many("user", rows, Actor.system(), "import")
    assert hostile.snapshot() == before
    assert [(e.row, e.field, e.code, e.message) for e in caught.value.errors] == [
        (1, "username", "max_length", "must be at most 150 characters"),
        (2, "username", "type", "must not contain NUL characters"),
        (3, "username", "type", "must be text"),
    ]
