"""Listing from a large table: 50 rows with a filter on an indexed field and a sort, out of
1,000,000, through ``RecordService.list`` (the API's query path), through the REST API
(Flask test client) and as the same query in raw SQLAlchemy Core, in one run.

    python benchmarks/list_large.py                      # SQLite file in a temp folder
    python benchmarks/list_large.py --pg postgresql+psycopg://postgres@127.0.0.1/postgres

The entity ``big_item`` declares ``region`` (integer, ``index: true``) and an index on
``(region, amount)``. The rows are generated in the database in one statement (a
recursive CTE on SQLite, ``generate_series`` on PostgreSQL); 100 regions, so a filter
matches about 10,000 rows, with some empty amounts. The query: ``region = 42``, sorted by
``-amount``, 50 rows. The raw baseline is what one would write by hand:
``SELECT ... WHERE region = 42 ORDER BY amount DESC NULLS FIRST, id LIMIT 50`` (Formwork
puts empty values first in a descending sort on every database) with the rows turned into
dicts; the script checks that both give the same rows. The three take turns ``--runs``
times (after a warm-up, with the garbage collector paused as timeit does); the medians
and the fastest runs are compared (goal: RecordService.list <= 1.5x raw). The query plans are printed once. With ``--pg``,
a fresh database is created on that server and dropped at the end.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from bench_database import fresh_database

ENTITY = """
kind: entity
name: big_item
title_field: code
fields:
  code: {type: string, required: true, max_length: 20}
  name: {type: string, max_length: 80}
  region: {type: integer, index: true}
  amount: {type: decimal, digits: [12, 2]}
  ordered_on: {type: date}
  category: {type: choice, options: [alpha, beta, gamma]}
  active: {type: boolean}
indexes: [[region, amount]]
"""
REGION = 42
COLUMNS = "id, created_at, updated_at, version, code, name, region, amount, ordered_on, category, active"
# One row per n: region n % 100, every 97th amount empty, the rest spread over 0..99999.99.
SQLITE_FILL = f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
INSERT INTO big_item ({COLUMNS})
SELECT i, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 1, printf('IT-%07d', i), 'item ' || i, i % 100,
       CASE WHEN i % 97 = 0 THEN NULL ELSE ((i * 7919) % 10000000) / 100.0 END,
       date('2026-01-01', '+' || (i % 365) || ' days'), CASE i % 3 WHEN 0 THEN 'alpha' WHEN 1 THEN 'beta' ELSE 'gamma' END, i % 2
FROM n
"""
PG_FILL = f"""
INSERT INTO big_item ({COLUMNS})
SELECT i, timestamptz '2026-01-01 00:00:00+00', timestamptz '2026-01-01 00:00:00+00', 1, 'IT-' || lpad(i::text, 7, '0'), 'item ' || i, i % 100,
       CASE WHEN i % 97 = 0 THEN NULL ELSE ((i::bigint * 7919) % 10000000) / 100.0 END,
       date '2026-01-01' + (i % 365), (ARRAY['alpha', 'beta', 'gamma'])[i % 3 + 1], i % 2 = 1
FROM generate_series(1, :rows) AS i
"""


def interleaved_ms(actions: dict[str, Callable[[], object]], runs: int) -> dict[str, tuple[float, float]]:
    """(median, fastest) milliseconds of each action. The actions take turns, in a rotating
    order, so load from elsewhere on the machine falls on all of them alike."""
    names = list(actions)
    for name in names:
        for _ in range(3):
            actions[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    gc.disable()  # as timeit does: a collection would land on whichever action runs then
    try:
        for run in range(runs):
            for name in names[run % len(names):] + names[: run % len(names)]:
                start = time.perf_counter()
                actions[name]()
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return {name: (statistics.median(found) * 1000, min(found) * 1000) for name, found in times.items()}


def explain(conn: sa.Connection, statement: sa.Select) -> str:
    compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
        return "\n".join(f"    {row[-1]}" for row in rows)
    rows = conn.exec_driver_sql(f"EXPLAIN {compiled}").all()
    return "\n".join(f"    {row[0]}" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--pg", help="a PostgreSQL server URL; a fresh database is created on it and dropped afterwards")
    args = parser.parse_args()
    # a SIGTERM unwinds like Ctrl-C: the PostgreSQL database is dropped
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit("stopped by SIGTERM"))

    from formwork.metadata import compile_project, load_project
    from formwork.records import Actor, RecordQuery
    from formwork.records.listing import Listing
    from formwork.security.accounts import Accounts
    from formwork.storage import make_engine, migrate
    from formwork.web.app import build_runtime, create_app

    with tempfile.TemporaryDirectory(prefix="formwork-list-") as folder, fresh_database(args.pg, Path(folder), "list") as url:
        root = Path(folder) / "project"
        (root / "metadata").mkdir(parents=True)
        (root / "formwork.yaml").write_text(f"name: list_bench\nmetadata: [metadata]\ndatabase: '{url}'\n", encoding="utf-8")
        (root / "metadata" / "big_item.yaml").write_text(textwrap.dedent(ENTITY), encoding="utf-8")
        project = load_project(root, environ={"DATABASE_URL": url})
        app = compile_project(project)
        engine = make_engine(url)
        migrate(engine, app)
        runtime = build_runtime(project, app, engine)
        table = runtime.schema.table("big_item")

        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(SQLITE_FILL if engine.dialect.name == "sqlite" else PG_FILL), {"rows": args.rows})
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        backend = engine.dialect.name
        print(f"{backend}: {args.rows:,} rows generated in {time.perf_counter() - started:.1f} s")
        with engine.connect() as conn:
            if backend == "sqlite":
                indexes = [row[1] for row in conn.exec_driver_sql("PRAGMA index_list(big_item)")]
            else:
                indexes = list(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'big_item'")).scalars())
        print(f"indexes on big_item: {', '.join(sorted(indexes))}")
        for wanted in ("ix_big_item_region", "ix_big_item_region_amount"):
            if wanted not in indexes:
                raise SystemExit(f"the index {wanted} that the metadata declares is missing")

        query = RecordQuery(filters={"region": REGION}, sort=("-amount",), limit=50)
        actor = Actor.system()
        raw = (
            sa.select(*(table.c[name.strip()] for name in COLUMNS.split(",")), table.c.created_by, table.c.updated_by)
            .where(table.c.region == REGION)
            .order_by(table.c.amount.desc().nulls_first(), table.c.id)
            .limit(50)
        )

        def raw_list() -> list[dict]:
            with engine.connect() as conn:
                return [dict(row) for row in conn.execute(raw).mappings()]

        def service_list() -> list[dict]:
            return runtime.records.list("big_item", actor, query)

        flask_app = create_app(project, app_model=app, engine=engine)
        # the API needs credentials: an admin's bearer token, as a script would send it
        accounts = Accounts(flask_app.extensions["formwork"].records)
        accounts.create_user("bench_admin", None, admin=True)
        client = flask_app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {accounts.create_token('bench_admin').token}"
        path = f"/api/v1/big_item?region={REGION}&sort=-amount&limit=50"

        def api_list() -> int:
            response = client.get(path)
            assert response.status_code == 200, response.data[:300]
            return len(response.get_json()["items"])

        ours, theirs = service_list(), raw_list()
        if len(ours) != 50 or len(theirs) != 50 or api_list() != 50:
            raise SystemExit("a query did not give 50 rows")
        if [r["id"] for r in ours] != [r["id"] for r in theirs]:
            raise SystemExit("RecordService.list and the raw query gave different rows")

        # The statement RecordService.list runs, rebuilt the way list_rows builds it, for its plan.
        with engine.connect() as conn:
            from datetime import UTC, datetime

            from formwork.records.rows import select_record

            listing = Listing(conn, app, runtime.schema.tables, app.entities["big_item"], query, None, actor, datetime.now(UTC))
            keys = listing.keys()
            ours_sql = select_record(table, app.entities["big_item"]).where(*listing.conditions()).order_by(*listing.order(keys)).limit(50)
            for title, statement in (("RecordService.list's query", ours_sql), ("the raw query", raw)):
                plan = explain(conn, statement)
                print(f"plan of {title}:\n{plan}")
                if "ix_big_item_region" not in plan:
                    raise SystemExit(f"{title} does not use the region index")

        load = os.getloadavg()
        timed = interleaved_ms({"raw": raw_list, "service": service_list, "api": api_list}, args.runs)
        (raw_ms, raw_min), (service_ms, service_min), (api_ms, api_min) = timed["raw"], timed["service"], timed["api"]
        print(f"\n{args.runs} interleaved runs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min), {os.cpu_count()} cores")
        print("                              median                  fastest run")
        print(f"raw SQLAlchemy Core:          {raw_ms:7.2f} ms                {raw_min:7.2f} ms")
        print(f"RecordService.list:           {service_ms:7.2f} ms = {service_ms / raw_ms:5.2f}x raw   {service_min:7.2f} ms = {service_min / raw_min:5.2f}x raw"
              "   (goal <= 1.5x)")
        print(f"REST API (Flask test client): {api_ms:7.2f} ms = {api_ms / raw_ms:5.2f}x raw   {api_min:7.2f} ms = {api_min / raw_min:5.2f}x raw")
        engine.dispose()


if __name__ == "__main__":
    main()
