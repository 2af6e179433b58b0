"""Field types and rules beyond the purchase request: times, JSON, compute hooks,
read-only fields, checks over two fields, and the permission seam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from formwork.plugins import PluginError
from formwork.records import (
    Actor,
    AllowAll,
    FieldError,
    PermissionDenied,
    RecordInvalid,
    RecordNotFound,
    RecordQuery,
    RecordService,
)


def test_times_are_stored_and_returned_in_utc(world):
    plus8 = timezone(timedelta(hours=8))
    ticket = world.service.create("ticket", {"subject": "a", "opened_at": "2026-11-21T18:00:00+08:00"}, world.actor, "api")
    assert ticket["opened_at"] == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    again = world.service.update("ticket", ticket["id"], {"opened_at": datetime(2026, 11, 21, 18, 0, tzinfo=plus8)}, world.actor, "api", 1)
    assert again["version"] == 1  # the same moment: nothing changed
    assert world.service.get("ticket", ticket["id"], world.actor)["created_at"] == datetime(2026, 11, 21, 10, 30, tzinfo=UTC)


def test_json_fields_keep_structures(world):
    details = {"tags": ["chair", "broken"], "floor": 3}
    ticket = world.service.create("ticket", {"subject": "a", "details": details}, world.actor, "api")
    assert world.service.get("ticket", ticket["id"], world.actor)["details"] == details
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("ticket", {"subject": "b", "details": {"when": object()}}, world.actor, "api")
    assert [(e.field, e.code) for e in caught.value.errors] == [("details", "type")]


def test_compute_hook_fills_its_field_and_may_refuse(world):
    world.hooks.behaviour["test.score"] = lambda record, ctx: len(record["subject"]) if ctx.field == "score" else None
    assert world.service.create("ticket", {"subject": "four"}, world.actor, "api")["score"] == 4

    def refuse(record, ctx):
        raise PluginError("cannot score this")

    world.hooks.behaviour["test.score"] = refuse
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("ticket", {"subject": "x"}, world.actor, "api")
    assert caught.value.errors == [FieldError("score", "plugin", "cannot score this")]
    assert world.snapshot() == before


def test_computed_values_given_by_the_caller_are_replaced(world):
    record = world.service.create("purchase_request", {"title": "a", "total": 999}, world.actor, "api")
    assert record["total"] == 0


def test_read_only_fields_are_refused_from_people_but_not_from_code(world):
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("ticket", {"subject": "a", "locked": "yes"}, world.actor, "screen")
    assert caught.value.errors == [FieldError("locked", "read_only", "is read-only")]
    ticket = world.service.create("ticket", {"subject": "a", "locked": "yes"}, world.actor, "plugin")
    # sending back the stored value from a form is fine; changing it is not
    same = world.service.update("ticket", ticket["id"], {"subject": "b", "locked": "yes"}, world.actor, "screen", 1)
    assert same["subject"] == "b"
    with pytest.raises(RecordInvalid):
        world.service.update("ticket", ticket["id"], {"locked": "no"}, world.actor, "api", 2)


def test_a_check_over_two_fields_fails_only_when_false(world):
    ok = world.service.create("ticket", {"subject": "a", "ends_on": "2026-01-01"}, world.actor, "api")
    assert ok["ends_on"].isoformat() == "2026-01-01"  # unknown start: like SQL CHECK, passes
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("ticket", {"subject": "b", "starts_on": "2026-02-01", "ends_on": "2026-01-01"}, world.actor, "api")
    assert caught.value.errors == [FieldError("ends_on", "check", "must be on or after the start")]


def test_defaults_read_the_user_record(world):
    assert world.service.create("ticket", {"subject": "mine"}, world.actor, "api")["reporter"] == "Alice Liddell"


def test_the_system_actor_writes_without_a_user(world):
    record = world.service.create("ticket", {"subject": "seeded"}, Actor.system(), "seed")
    assert record["created_by"] is None and record["reporter"] is None
    assert world.rows("fw_audit")[-1]["user_id"] is None


class OwnTicketsOnly(AllowAll):
    """A policy like the security stage's: no deletes, and only your own tickets (every
    field readable and writable on them, as ``AllowAll`` says)."""

    def authorize(self, action, entity, actor, channel, record):
        if action == "delete":
            raise PermissionDenied(action, entity)

    def row_filter(self, entity, actor, table):
        return table.c.created_by == actor.user_id if entity == "ticket" else None


def test_a_policy_plugs_in_without_changing_callers(world):
    service = world.service
    guarded = RecordService(service.app, world.schema, world.engine, service.hooks, service.clock, policy=OwnTicketsOnly())
    mine = guarded.create("ticket", {"subject": "mine"}, world.actor, "api")
    theirs = guarded.create("ticket", {"subject": "theirs"}, Actor.system(), "seed")

    assert [t["subject"] for t in guarded.list("ticket", world.actor, RecordQuery())] == ["mine"]
    assert guarded.count("ticket", world.actor, RecordQuery()) == 1
    with pytest.raises(RecordNotFound):
        guarded.get("ticket", theirs["id"], world.actor)
    with pytest.raises(RecordNotFound):
        guarded.update("ticket", theirs["id"], {"subject": "x"}, world.actor, "api", 1)
    before = world.snapshot()
    with pytest.raises(PermissionDenied):
        guarded.delete("ticket", mine["id"], world.actor, "api")
    assert world.snapshot() == before
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from ticket")).scalar_one() == 2
