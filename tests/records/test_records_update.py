"""Updating and deleting: optimistic locking, child rows, audit trail, snapshots."""

from __future__ import annotations

from decimal import Decimal

import pytest

from formwork.plugins import PluginError
from formwork.records import FieldError, PluginFailure, RecordInvalid, RecordNotFound, StaleVersion

LINES = [
    {"item": "Paper", "quantity": 3, "unit_price": "2.50"},
    {"item": "Pens", "quantity": 10, "unit_price": "1.20"},
]


@pytest.fixture
def request_record(world):
    record = world.service.create("purchase_request", {"title": "Supplies", "amount": 100, "lines": LINES}, world.actor, "api")
    world.hooks.calls.clear()
    return record


def test_update_changes_fields_bumps_version_and_audits_old_and_new(world, request_record):
    updated = world.service.update("purchase_request", request_record["id"], {"amount": "150.5", "title": "More supplies"}, world.actor, "screen", 1)

    assert updated["version"] == 2 and updated["amount"] == Decimal("150.50") and updated["title"] == "More supplies"
    assert updated["number"] == request_record["number"] and updated["lines"] == request_record["lines"]
    audit = world.rows("fw_audit")[-1]
    assert (audit["action"], audit["channel"], audit["record_id"]) == ("update", "screen", request_record["id"])
    assert audit["changes"] == {
        "amount": {"old": "100.00", "new": "150.50"},
        "title": {"old": "Supplies", "new": "More supplies"},
    }
    assert world.rows("fw_event")[-1]["event"] == "purchase_request.updated"
    assert world.hooks.calls[-1][2].old == request_record


def test_stale_version_is_refused_and_the_row_is_unchanged(world, request_record):
    world.service.update("purchase_request", request_record["id"], {"title": "Changed by Bob"}, world.actor, "api", 1)
    before = world.snapshot()

    with pytest.raises(StaleVersion) as caught:
        world.service.update("purchase_request", request_record["id"], {"title": "Alice's edit"}, world.actor, "api", 1)

    assert caught.value.current == 2
    assert world.snapshot() == before


def test_user_channels_must_send_the_version(world, request_record):
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.update("purchase_request", request_record["id"], {"title": "x"}, world.actor, "api", None)
    assert [(e.field, e.code) for e in caught.value.errors] == [("version", "version_required")]
    assert world.snapshot() == before
    # the workflow and plugins write on top of whatever is stored
    assert world.service.update("purchase_request", request_record["id"], {"title": "x"}, world.actor, "plugin", None)["version"] == 2


def test_invalid_update_writes_nothing(world, request_record):
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.update("purchase_request", request_record["id"], {"title": "", "priority": 7, "id": 5}, world.actor, "api", 1)
    assert sorted((e.field, e.code) for e in caught.value.errors) == [("id", "system_field"), ("priority", "max"), ("title", "required")]
    assert world.snapshot() == before


def test_update_without_changes_writes_nothing(world, request_record):
    before = world.snapshot()
    same = world.service.update("purchase_request", request_record["id"], {"title": "Supplies", "amount": "100.00"}, world.actor, "api", 1)
    assert same == request_record
    assert world.snapshot() == before


def test_child_rows_are_updated_added_and_removed_in_order(world, request_record):
    paper, pens = request_record["lines"]
    new_lines = [
        {"id": pens["id"], "quantity": 20},
        {"item": "Stapler", "quantity": 1, "unit_price": "15"},
    ]
    updated = world.service.update("purchase_request", request_record["id"], {"lines": new_lines}, world.actor, "api", 1)

    assert [(line["id"], line["item"], line["quantity"], line["amount"]) for line in updated["lines"]] == [
        (pens["id"], "Pens", 20, Decimal("24.00")),
        (updated["lines"][1]["id"], "Stapler", 1, Decimal("15.00")),
    ]
    assert updated["total"] == Decimal("39.00")
    assert [r["row_order"] for r in world.rows("purchase_request_line")] == [0, 1]
    assert paper["id"] not in {r["id"] for r in world.rows("purchase_request_line")}
    changes = world.rows("fw_audit")[-1]["changes"]
    assert changes["total"] == {"old": "19.50", "new": "39.00"}
    assert [line["item"] for line in changes["lines"]["new"]] == ["Pens", "Stapler"]


def test_child_row_error_on_update_keeps_the_old_rows(world, request_record):
    before = world.snapshot()
    bad = [{"id": request_record["lines"][0]["id"], "quantity": -2}, {"id": 999999, "item": "x", "quantity": 1, "unit_price": 1}]
    with pytest.raises(RecordInvalid) as caught:
        world.service.update("purchase_request", request_record["id"], {"lines": bad}, world.actor, "api", 1)
    assert [(e.field, e.code, e.message) for e in caught.value.errors] == [
        ("lines[1].id", "row", "is not a row of this record (id 999999)"),
        ("lines[0].quantity", "min", "must be at least 1"),
    ]
    assert world.snapshot() == before


def test_status_is_written_only_by_the_workflow(world, request_record):
    with pytest.raises(RecordInvalid) as caught:
        world.service.update("purchase_request", request_record["id"], {"status": "approved"}, world.actor, "api", 1)
    assert caught.value.errors == [FieldError("status", "status_field", "is changed only by the workflow's actions")]
    with pytest.raises(RecordInvalid) as caught:
        world.service.update("purchase_request", request_record["id"], {"status": "lost"}, world.actor, "workflow", None)
    assert caught.value.errors == [FieldError("status", "choice", "must be one of: new, approved")]
    approved = world.service.update("purchase_request", request_record["id"], {"status": "approved"}, world.actor, "workflow", None)
    assert approved["status"] == "approved"
    assert world.rows("fw_audit")[-1]["changes"] == {"status": {"old": "new", "new": "approved"}}


def test_update_of_a_missing_record(world):
    with pytest.raises(RecordNotFound):
        world.service.update("purchase_request", 12345, {"title": "x"}, world.actor, "api", 1)


def test_delete_keeps_a_full_snapshot_in_the_audit_trail(world, request_record):
    world.service.delete("purchase_request", request_record["id"], world.actor, "api", 1)

    assert world.count("purchase_request") == 0 and world.count("purchase_request_line") == 0
    audit = world.rows("fw_audit")[-1]
    assert (audit["action"], audit["record_id"]) == ("delete", request_record["id"])
    snapshot = {name: change["old"] for name, change in audit["changes"].items()}
    assert all(change["new"] is None for change in audit["changes"].values())
    assert snapshot["title"] == "Supplies" and snapshot["number"] == request_record["number"]
    assert snapshot["amount"] == "100.00" and snapshot["version"] == 1
    assert [line["item"] for line in snapshot["lines"]] == ["Paper", "Pens"]
    assert world.rows("fw_event")[-1]["event"] == "purchase_request.deleted"
    assert world.hooks.names() == ["test.before_delete", "test.after_delete"]
    with pytest.raises(RecordNotFound):
        world.service.get("purchase_request", request_record["id"], world.actor)


def test_delete_with_a_stale_version_is_refused(world, request_record):
    world.service.update("purchase_request", request_record["id"], {"title": "Changed"}, world.actor, "api", 1)
    before = world.snapshot()
    with pytest.raises(StaleVersion):
        world.service.delete("purchase_request", request_record["id"], world.actor, "api", 1)
    assert world.snapshot() == before


def test_a_record_others_link_to_cannot_be_deleted(world, request_record):
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.delete("department", world.department_id, world.actor, "api")
    assert caught.value.errors == [
        FieldError("", "in_use", "cannot be deleted: still used by 1 user (department), 1 purchase request (department)")
    ]
    assert world.snapshot() == before


@pytest.mark.parametrize("point", ["before_delete", "after_delete"])
def test_plugin_refusing_a_delete_rolls_it_back(world, request_record, point):
    def refuse(record, ctx):
        raise PluginError("requests with lines are kept")

    world.hooks.behaviour[f"test.{point}"] = refuse
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.delete("purchase_request", request_record["id"], world.actor, "api")
    assert caught.value.errors == [FieldError("", "plugin", "requests with lines are kept")]
    assert world.snapshot() == before


def test_crashing_before_save_hook_on_update_rolls_back(world, request_record):
    def crash(record, ctx):
        raise KeyError("oops")

    world.hooks.behaviour["test.before_save"] = crash
    before = world.snapshot()
    with pytest.raises(PluginFailure):
        world.service.update("purchase_request", request_record["id"], {"title": "x"}, world.actor, "api", 1)
    assert world.snapshot() == before


def test_a_version_sent_as_form_text_is_understood(world, request_record):
    updated = world.service.update("purchase_request", request_record["id"], {"title": "From a form"}, world.actor, "screen", "1")
    assert updated["version"] == 2
    with pytest.raises(StaleVersion):
        world.service.update("purchase_request", request_record["id"], {"title": "Again"}, world.actor, "screen", "1")
