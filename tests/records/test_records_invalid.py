"""Every bad input is refused with a clear error on its field, and nothing is written."""

from __future__ import annotations

import pytest

from formwork.plugins import PluginError
from formwork.records import FieldError, PluginFailure, RecordInvalid


def refused(world, values, channel="api"):
    """Create ``values``; return the (field, code, message) errors and check nothing changed."""
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("purchase_request", values, world.actor, channel)
    assert world.snapshot() == before
    return [(e.field, e.code, e.message) for e in caught.value.errors]


# (input, the one error it gives); one test walks them all to keep the suite fast
BAD_INPUT = [
    ({"title": "A", "amount": "lots"}, ("amount", "type", "must be a number")),
    ({"title": "A", "priority": "2.5"}, ("priority", "type", "must be a whole number")),
    ({"title": "A", "needed_by": "next week"}, ("needed_by", "type", "must be a date (YYYY-MM-DD)")),
    ({"title": "A", "urgent": "maybe"}, ("urgent", "type", "must be true or false")),
    ({"title": "A", "department": "sales"}, ("department", "type", "must be the id of a record")),
    ({"title": "A", "amout": 5}, ("amout", "unknown_field", "is not a field of purchase_request (did you mean 'amount'?)")),
    ({"title": "A", "version": 7}, ("version", "system_field", "is set by the system and cannot be written")),
    ({"title": "A", "created_by": 1}, ("created_by", "system_field", "is set by the system and cannot be written")),
    ({"title": "A", "status": "approved"}, ("status", "status_field", "is changed only by the workflow's actions")),
    ({"title": "A", "amount": -1}, ("amount", "min", "must be at least 0")),
    ({"title": "A", "priority": 9}, ("priority", "max", "must be at most 5")),
    ({"title": "Far too long a title here"}, ("title", "max_length", "must be at most 20 characters")),
    ({"title": "A", "currency": "GBP"}, ("currency", "choice", "must be one of: CNY, USD, EUR")),
    ({"title": "A", "contact": "not-an-email"}, ("contact", "email", "must be an email address like name@example.com")),
    ({"title": "A", "amount": "1.234"}, ("amount", "digits", "must have at most 2 decimal places")),
    ({"amount": 5}, ("title", "required", "is required")),
    ({"title": "  "}, ("title", "required", "is required")),
    ({"title": "A", "amount": 20000}, ("reason", "required", "is required here")),
    ({"title": "A", "needed_by": "2026-01-01"}, ("needed_by", "check", "must not be in the past")),
    ({"title": "A", "department": 999}, ("department", "link", "refers to a department that does not exist (id 999)")),
]


def test_each_bad_input_is_refused_on_its_field(world):
    got = [(values, refused(world, values)) for values, _expected in BAD_INPUT]
    assert got == [(values, [expected]) for values, expected in BAD_INPUT]


def test_all_problems_are_reported_at_once(world):
    errors = refused(world, {"amount": "x", "bogus": 1, "id": 3, "currency": "GBP", "priority": 0})
    assert sorted((field, code) for field, code, _message in errors) == [
        ("amount", "type"),
        ("bogus", "unknown_field"),
        ("currency", "choice"),
        ("id", "system_field"),
        ("priority", "min"),
        ("title", "required"),
    ]


def test_duplicate_unique_value(world):
    world.service.create("purchase_request", {"title": "First", "code": "X1"}, world.actor, "api")
    assert refused(world, {"title": "Second", "code": "X1"}) == [
        ("code", "unique", "must be unique: another purchase request already has 'X1'")
    ]


def test_duplicate_unique_set(world):
    world.service.create("ticket", {"subject": "a", "category": "it", "seq": 1}, world.actor, "api")
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("ticket", {"subject": "b", "category": "it", "seq": 1}, world.actor, "api")
    assert caught.value.errors == [
        FieldError("category", "unique", "must be unique together with category, seq: another ticket already has these values")
    ]
    assert world.snapshot() == before


def test_child_row_errors_name_the_row(world):
    lines = [
        {"item": "Paper", "quantity": 1, "unit_price": 1},
        {"item": "Pens", "quantity": 0, "unit_price": "abc"},
        {"quantity": 2, "unit_price": 1, "colour": "red"},
    ]
    assert refused(world, {"title": "A", "lines": lines}) == [
        ("lines[1].unit_price", "type", "must be a number"),
        ("lines[2].colour", "unknown_field", "is not a field of purchase_request_line"),
        ("lines[1].quantity", "min", "must be at least 1"),
        ("lines[2].item", "required", "is required"),
    ]


def test_table_field_must_be_a_list_of_rows(world):
    assert refused(world, {"title": "A", "lines": "Paper"}) == [("lines", "type", "must be a list of rows")]


def test_custom_validator_refusal_is_shown_on_its_field(world):
    def no_shouting(record, ctx):
        if record["note"].isupper():
            raise PluginError("please do not shout")

    world.hooks.behaviour["test.no_shouting"] = no_shouting
    assert refused(world, {"title": "A", "note": "HELLO"}) == [("note", "plugin", "please do not shout")]


def test_plugin_error_in_before_save_rolls_back(world):
    def over_budget(record, ctx):
        raise PluginError("over the department budget", field="amount", code="budget")

    world.hooks.behaviour["test.before_save"] = over_budget
    assert refused(world, {"title": "A", "amount": 5}) == [("amount", "budget", "over the department budget")]


def test_plugin_error_after_save_rolls_back_the_written_row(world):
    def refuse(record, ctx):
        raise PluginError("not today")

    world.hooks.behaviour["test.after_save"] = refuse
    assert refused(world, {"title": "A", "lines": [{"item": "x", "quantity": 1, "unit_price": 1}]}) == [
        ("", "plugin", "not today")
    ]


def test_crashing_hook_rolls_back_and_hides_the_traceback(world, caplog):
    def crash(record, ctx):
        ctx.service.create("ticket", {"subject": "written before the crash"}, ctx.user, "plugin")
        raise ZeroDivisionError("plugin bug")

    world.hooks.behaviour["test.after_save"] = crash
    before = world.snapshot()
    with pytest.raises(PluginFailure) as caught:
        world.service.create("purchase_request", {"title": "A"}, world.actor, "api")

    assert world.snapshot() == before
    assert "plugin bug" not in str(caught.value) and caught.value.error_id in str(caught.value)
    logged = [r for r in caught_records(caplog) if caught.value.error_id in r.getMessage()]
    assert logged and logged[0].exc_info and "ZeroDivisionError" in caplog.text


def caught_records(caplog):
    return [r for r in caplog.records if r.name == "formwork.records.hooks"]


def test_create_many_reports_errors_of_every_row_and_writes_none(world):
    rows = [{"title": "good"}, {"title": ""}, {"title": "ok", "amount": "x"}, {"title": "fine"}]
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.create_many("purchase_request", rows, world.actor, "import")
    assert [(e.row, e.field, e.code) for e in caught.value.errors] == [(1, "title", "required"), (2, "amount", "type")]
    assert world.snapshot() == before


def test_duplicates_within_one_batch_are_refused(world):
    rows = [{"title": "one", "code": "C1"}, {"title": "two", "code": "C1"}]
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.create_many("purchase_request", rows, world.actor, "import")
    assert [(e.row, e.field, e.code) for e in caught.value.errors] == [(1, "code", "unique")]
    assert world.snapshot() == before
