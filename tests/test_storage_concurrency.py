"""Two migrates on one database at once, as two processes with their own engines would run them."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from test_storage_apps import PRODUCT, make_app

from formwork.storage import MigrationRefused, make_engine, migrate, read_state


def run_in_thread(results: dict, key: str, engine: sa.Engine, app, **options) -> threading.Thread:
    def work() -> None:
        try:
            results[key] = migrate(engine, app, **options)
        except Exception as exc:  # handed to the test thread, which asserts on it
            results[key] = exc

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def state_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM fw_metadata_state")).scalar_one()


def test_second_migrate_waits_for_the_first_or_refuses_cleanly(db_url):
    first, second = make_engine(db_url), make_engine(db_url)
    app = make_app(PRODUCT)
    inside = threading.Event()
    release = threading.Event()

    # Hold the first migrate inside its transaction, after it took the lock.
    @sa.event.listens_for(first, "before_cursor_execute")
    def pause(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("CREATE TABLE") and not inside.is_set():
            inside.set()
            release.wait(30)

    results: dict = {}
    one = run_in_thread(results, "first", first, app)
    try:
        assert inside.wait(30)
        with pytest.raises(MigrationRefused) as refused:
            migrate(second, app, lock_timeout=0.3)
        [problem] = refused.value.problems
        assert problem.code == "FW-E520"
        assert "another migrate is running" in problem.message
        assert refused.value.plan.format() == ["Database not compared: another migrate holds the lock."]
        assert read_state(second) is None

        two = run_in_thread(results, "second", second, app, lock_timeout=60)
    finally:
        release.set()
        one.join(60)
    two.join(60)
    assert not isinstance(results["first"], Exception), results["first"]
    assert not isinstance(results["second"], Exception), results["second"]
    assert not results["first"].is_empty
    assert results["second"].is_empty
    assert state_rows(second) == 1
    first.dispose()
    second.dispose()


def test_two_migrates_started_together_both_finish_and_apply_once(db_url):
    engines = [make_engine(db_url), make_engine(db_url)]
    app = make_app(PRODUCT)
    start = threading.Barrier(2)
    results: dict = {}

    def work(i: int) -> None:
        start.wait(10)
        try:
            results[i] = migrate(engines[i], app)
        except Exception as exc:  # handed to the test thread
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(not isinstance(r, Exception) for r in results.values()), results
    assert sorted(r.is_empty for r in results.values()) == [False, True]
    assert state_rows(engines[0]) == 1
    for engine in engines:
        engine.dispose()
