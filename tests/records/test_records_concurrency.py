"""Concurrent writers with real threads: numbers never repeat, stale writes lose, the
database's own unique check is translated like ours."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from formwork.records import FieldError, RecordInvalid, StaleVersion

WRITERS = 6
EACH = 5


def test_concurrent_creates_get_distinct_consecutive_numbers(world):
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> list[str]:
        start.wait()
        numbers = []
        for i in range(EACH):
            # requests and tickets interleave: two counters, taken in either order
            numbers.append(world.service.create("purchase_request", {"title": f"w{n} r{i}"}, world.actor, "api")["number"])
            numbers.append(world.service.create("ticket", {"subject": f"w{n} t{i}"}, world.actor, "api")["number"])
        return numbers

    with ThreadPoolExecutor(WRITERS) as pool:
        numbers = [number for batch in pool.map(writer, range(WRITERS)) for number in batch]

    total = WRITERS * EACH
    assert sorted(n for n in numbers if n.startswith("PR")) == [f"PR-2026-{n:04d}" for n in range(1, total + 1)]
    assert sorted(n for n in numbers if n.startswith("T")) == [f"T2611-{n:03d}" for n in range(1, total + 1)]
    assert world.count("purchase_request") == world.count("ticket") == total
    assert sorted((r["name"], r["last_value"]) for r in world.rows("fw_number_sequence")) == [
        ("PR-{YYYY}-{####}", total),
        ("T{YY}{MM}-{###}", total),
    ]


def test_two_writers_of_the_same_version_one_wins(world):
    record = world.service.create("purchase_request", {"title": "Shared"}, world.actor, "api")
    start = threading.Barrier(2)

    def writer(title: str) -> str:
        start.wait()
        try:
            world.service.update("purchase_request", record["id"], {"title": title}, world.actor, "api", 1)
        except StaleVersion:
            return "stale"
        return "saved"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(writer, ["Alice", "Bob"]))

    assert outcomes == ["saved", "stale"]
    stored = world.service.get("purchase_request", record["id"], world.actor)
    assert stored["version"] == 2 and stored["title"] in ("Alice", "Bob")
    assert [a["action"] for a in world.rows("fw_audit") if a["record_id"] == record["id"] and a["entity"] == "purchase_request"] == [
        "create",
        "update",
    ]


def test_unique_violation_found_by_the_database_reads_like_the_check(world):
    """A value taken between our check and our insert (here: by a hook, in the same
    transaction) is refused by the database; the user sees the check's message."""
    table = world.schema.table("purchase_request")

    def take_the_code(record, ctx):
        with ctx.service.transaction() as conn:
            conn.execute(sa.insert(table).values(title="sneaky", code="X1", version=1))

    world.hooks.behaviour["test.before_save"] = take_the_code
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as caught:
        world.service.create("purchase_request", {"title": "Mine", "code": "X1"}, world.actor, "api")
    assert caught.value.errors == [FieldError("code", "unique", "must be unique: another purchase request already has 'X1'")]
    assert world.snapshot() == before


def test_an_open_numbered_create_holds_up_no_other_entity_and_no_update(world, db_url):
    """While one create of a purchase request is still open (its number counter locked),
    tickets are created and other requests updated. PostgreSQL only: SQLite has a single
    writer by design."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite lets one writer at a time")
    existing = world.service.create("purchase_request", {"title": "Existing"}, world.actor, "api")
    numbered, release = threading.Event(), threading.Event()

    def slow_create() -> None:
        with world.service.transaction():
            world.service.create("purchase_request", {"title": "Slow"}, world.actor, "api")
            numbered.set()
            release.wait()

    holder = threading.Thread(target=slow_create)
    holder.start()
    try:
        assert numbered.wait(30)
        others = threading.Thread(
            target=lambda: (
                world.service.create("ticket", {"subject": "meanwhile"}, world.actor, "api"),
                world.service.update("purchase_request", existing["id"], {"title": "Edited"}, world.actor, "api", 1),
            )
        )
        others.start()
        others.join(30)
        finished_while_held = not others.is_alive()
    finally:
        release.set()
        holder.join()
    assert finished_while_held
    assert world.count("ticket") == 1
    assert sorted(r["number"] for r in world.rows("purchase_request")) == ["PR-2026-0001", "PR-2026-0002"]
