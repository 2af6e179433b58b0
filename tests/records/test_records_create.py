"""Creating records: defaults, computed totals, numbers, audit and events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from formwork.metadata.model import App, Entity, Field
from formwork.plugins import HookRegistry
from formwork.records import Actor, FieldError, RecordInvalid, RecordService, journal
from formwork.storage import build_schema, make_engine

LINES = [
    {"item": "Paper", "quantity": "3", "unit_price": "2.50"},
    {"item": "Pens", "quantity": 10, "unit_price": Decimal("1.20")},
]


def test_create_fills_defaults_computes_totals_and_numbers(world):
    record = world.service.create("purchase_request", {"title": "Office supplies", "lines": LINES}, world.actor, "api")

    assert record["id"] > 0 and record["version"] == 1
    assert record["number"] == "PR-2026-0001"
    assert record["department"] == world.department_id  # $user.department
    assert record["requested_on"] == date(2026, 11, 21)  # =today() on the service clock
    assert record["currency"] == "CNY" and record["priority"] == 3 and record["urgent"] is False
    assert record["status"] == "new"  # the workflow's initial state
    assert record["created_by"] == world.actor.user_id == record["updated_by"]
    assert [line["amount"] for line in record["lines"]] == [Decimal("7.50"), Decimal("12.00")]
    assert record["total"] == Decimal("19.50")
    assert [line["item"] for line in record["lines"]] == ["Paper", "Pens"]
    assert world.service.get("purchase_request", record["id"], world.actor) == record


def test_form_strings_are_converted_to_field_types(world):
    values = {
        "title": "Chairs",
        "amount": "1200.50",
        "needed_by": "2026-12-01",
        "priority": "2",
        "urgent": "yes",
        "contact": "buyer@example.com",
        "department": str(world.department_id),
    }
    record = world.service.create("purchase_request", values, world.actor, "screen")

    assert record["amount"] == Decimal("1200.50")
    assert record["needed_by"] == date(2026, 12, 1)
    assert record["priority"] == 2 and record["urgent"] is True
    assert record["department"] == world.department_id


def test_numbers_count_up_per_pattern_and_period(world):
    first = world.service.create("purchase_request", {"title": "One"}, world.actor, "api")
    second = world.service.create("purchase_request", {"title": "Two"}, world.actor, "api")
    ticket = world.service.create("ticket", {"subject": "Broken chair"}, world.actor, "api")

    assert (first["number"], second["number"]) == ("PR-2026-0001", "PR-2026-0002")
    assert ticket["number"] == "T2611-001"
    assert {(r["name"], r["period"], r["last_value"]) for r in world.rows("fw_number_sequence")} == {
        ("PR-{YYYY}-{####}", "2026", 2),
        ("T{YY}{MM}-{###}", "2026-11", 1),
    }


def test_create_writes_one_audit_row_and_one_event(world):
    record = world.service.create("purchase_request", {"title": "Desk", "amount": "99.90"}, world.actor, "api")

    audit = world.rows("fw_audit")[-1]
    assert (audit["entity"], audit["record_id"], audit["action"], audit["channel"], audit["user_id"]) == (
        "purchase_request",
        record["id"],
        "create",
        "api",
        world.actor.user_id,
    )
    assert audit["changes"]["title"] == {"old": None, "new": "Desk"}
    assert audit["changes"]["amount"] == {"old": None, "new": "99.90"}
    event = world.rows("fw_event")[-1]
    assert (event["event"], event["record_id"], event["attempts"], event["delivered_at"]) == (
        "purchase_request.created",
        record["id"],
        0,
        None,
    )
    assert event["payload"]["record"]["title"] == "Desk"


def test_hooks_run_in_order_with_their_context(world):
    world.hooks.behaviour["test.before_validate"] = lambda record, ctx: record.update(code="BV")
    world.service.create("purchase_request", {"title": "Lamp"}, world.actor, "screen")

    assert world.hooks.names() == ["test.before_validate", "test.before_save", "test.after_save"]
    saved, ctx = world.hooks.calls[-1][1], world.hooks.calls[-1][2]
    assert saved["code"] == "BV" and saved["id"] > 0
    assert (ctx.user, ctx.channel, ctx.old, ctx.service) == (world.actor, "screen", None, world.service)


def test_a_hook_writes_other_records_in_the_same_transaction(world):
    def log_ticket(record, ctx):
        ctx.service.create("ticket", {"subject": f"review {record['number']}"}, ctx.user, "plugin")

    world.hooks.behaviour["test.after_save"] = log_ticket
    world.service.create("purchase_request", {"title": "Lamp"}, world.actor, "api")

    assert [t["subject"] for t in world.rows("ticket")] == ["review PR-2026-0001"]
    assert [a["channel"] for a in world.rows("fw_audit")][-2:] == ["api", "plugin"]


def test_create_many_writes_every_row_in_one_go(world):
    rows = [{"title": f"Item {n}", "amount": n} for n in range(5)]
    assert world.service.create_many("purchase_request", rows, Actor.system(), "import") == 5
    assert world.count("purchase_request") == 5
    assert world.rows("purchase_request")[-1]["number"] == "PR-2026-0005"


def _typed(record: dict) -> list:
    """``record``'s keys in order, each with its value's type, child rows included."""
    return [(k, [_typed(row) for row in v] if isinstance(v, list) else type(v)) for k, v in record.items()]


def test_create_returns_the_record_exactly_as_stored(world):
    def before_save(record, ctx):
        record["contact"] = "set.by@hook.example"
        record["lines"][1]["item"] = "Set by hook"
        record["amount"] = Decimal("40")

    world.hooks.behaviour["test.before_save"] = before_save
    lines = [{"item": "Paper", "quantity": "3", "unit_price": "2.5"}, {"item": "Pens", "quantity": 1, "unit_price": Decimal("1.2")}]
    record = world.service.create("purchase_request", {"title": "As stored", "amount": "12.5", "lines": lines}, world.actor, "api")
    stored = world.service.get("purchase_request", record["id"], world.actor)

    assert record == stored and _typed(record) == _typed(stored)
    # decimals come back with the column's places, whatever the places of the value written
    assert [str(record["amount"]), str(record["total"])] == ["40.00", "8.70"]
    assert [(str(line["unit_price"]), str(line["amount"])) for line in record["lines"]] == [("2.50", "7.50"), ("1.20", "1.20")]
    assert (record["contact"], record["lines"][1]["item"], record["number"]) == ("set.by@hook.example", "Set by hook", "PR-2026-0001")
    assert world.hooks.calls[-1][0] == "test.after_save" and world.hooks.calls[-1][1] == stored
    audit, event = world.rows("fw_audit")[-1], world.rows("fw_event")[-1]
    assert audit["changes"] == {k: {"old": None, "new": journal.json_safe(v)} for k, v in stored.items() if v is not None}
    assert event["payload"]["record"] == journal.json_safe(stored)


def test_a_created_json_time_and_hook_computed_record_is_returned_as_stored(world):
    world.hooks.behaviour["test.score"] = lambda record, ctx: 7
    details = {"tags": ["a", None], "ratio": 2.5, "nested": {"b": 1, "a": True}}
    values = {"subject": "Chair", "details": details, "opened_at": "2026-11-21T18:00:00+08:00"}
    ticket = world.service.create("ticket", values, world.actor, "api")
    stored = world.service.get("ticket", ticket["id"], world.actor)

    assert ticket == stored and _typed(ticket) == _typed(stored)
    assert (ticket["details"], ticket["score"], ticket["number"]) == (details, 7, "T2611-001")
    assert ticket["opened_at"] == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def _entity(name: str, *fields: Field, **options) -> Entity:
    return Entity(name=name, table=options.pop("table", name), fields={f.name: f for f in fields}, **options)


# Kits whose parts (a child table) have a unique code: their rows go in one at a time.
KIT_ENTITIES = (
    _entity("user", Field("username", "string", required=True, unique=True, max_length=150), table="fw_user", builtin=True),
    _entity("department", Field("name", "string", required=True), table="fw_department", builtin=True),
    _entity("part_row", Field("code", "string", required=True, unique=True, max_length=10), Field("weight", "decimal", digits=(6, 3)), is_child=True),
    _entity("kit", Field("name", "string", required=True), Field("parts", "table", entity="part_row"), hooks={"before_save": "test.kit_before_save"}),
)


@pytest.fixture
def kits(db_url: str) -> Iterator[tuple[RecordService, sa.Engine, list[Callable[[dict], None]]]]:
    """A service for kits whose parts have a unique code; the test sets the before_save hook."""
    app = App(name="kits", entities={e.name: e for e in KIT_ENTITIES})
    schema = build_schema(app)
    engine = make_engine(db_url)
    schema.metadata.create_all(engine)
    before_save: list[Callable[[dict], None]] = []

    def run_before_save(record: dict, _ctx: object) -> None:
        for hook in before_save:
            hook(record)

    registry = HookRegistry()
    registry.add("test.kit_before_save", run_before_save, "tests/records/test_records_create.py")
    yield RecordService(app, schema, engine, hooks=registry), engine, before_save
    engine.dispose()


def test_rows_of_a_child_table_with_a_unique_rule_are_returned_as_stored(kits):
    service, _engine, _hooks = kits
    parts = [{"code": "B2", "weight": "1.5"}, {"code": "A1", "weight": 2}, {"code": "C3"}]
    kit = service.create("kit", {"name": "Toolbox", "parts": parts}, Actor.system(), "api")

    assert kit == service.get("kit", kit["id"], Actor.system()) and _typed(kit) == _typed(service.get("kit", kit["id"], Actor.system()))
    assert [(p["code"], p["weight"] and str(p["weight"])) for p in kit["parts"]] == [("B2", "1.500"), ("A1", "2.000"), ("C3", None)]


def test_a_unique_clash_a_hook_causes_in_a_child_row_names_the_row_and_writes_nothing(kits):
    service, engine, before_save = kits
    service.create("kit", {"name": "First", "parts": [{"code": "A1"}]}, Actor.system(), "api")
    before_save.append(lambda record: record["parts"][1].update(code="A1"))
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM part_row")).scalar_one(), conn.execute(sa.text("SELECT count(*) FROM kit")).scalar_one()

    with pytest.raises(RecordInvalid) as caught:
        service.create("kit", {"name": "Second", "parts": [{"code": "Z9"}, {"code": "Y8"}]}, Actor.system(), "api")

    assert caught.value.errors == [FieldError("parts[1].code", "unique", "must be unique: another part row already has 'A1'")]
    with engine.connect() as conn:
        after = conn.execute(sa.text("SELECT count(*) FROM part_row")).scalar_one(), conn.execute(sa.text("SELECT count(*) FROM kit")).scalar_one()
    assert after == before == (1, 1)


def test_a_row_with_an_id_a_hook_adds_on_create_is_refused_and_nothing_written(world):
    world.hooks.behaviour["test.before_save"] = lambda record, ctx: record["lines"].append({"id": 5, "item": "Extra", "quantity": 1, "unit_price": Decimal(1)})
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("purchase_request", {"title": "Hooked", "lines": LINES}, world.actor, "api")

    assert [(e.field, e.code, e.message) for e in caught.value.errors] == [("lines[2].id", "row", "is not a row of this record (id 5)")]
    assert world.snapshot() == before


def test_unique_child_codes_are_checked_against_other_records_only(kits):
    service, _engine, _hooks = kits
    system = Actor.system()
    service.create("kit", {"name": "Other", "parts": [{"code": "B2"}]}, system, "api")
    kit = service.create("kit", {"name": "Mine", "parts": [{"code": "A1"}, {"code": "C3"}]}, system, "api")
    first, second = kit["parts"]

    # a row of the record may keep its code; a code of another record's row is refused
    kept = service.update("kit", kit["id"], {"parts": [{"id": first["id"], "code": "A1"}, {"id": second["id"], "weight": 1}]}, system, "api", 1)
    assert [p["code"] for p in kept["parts"]] == ["A1", "C3"] and kept["version"] == 2
    with pytest.raises(RecordInvalid) as caught:
        service.update("kit", kit["id"], {"parts": [{"id": first["id"]}, {"code": "B2"}]}, system, "api", 2)
    assert caught.value.errors == [FieldError("parts[1].code", "unique", "must be unique: another part row already has 'B2'")]
    assert service.get("kit", kit["id"], system) == kept
