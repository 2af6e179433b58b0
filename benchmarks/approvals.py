"""Approval speed on PostgreSQL: decisions per second with concurrent approvers, and the
"waiting for me" inbox of a user with 10,000 pending tasks among 1,000,000, as a ratio to
the equivalent hand-written indexed SQL, in the same run.

    python benchmarks/approvals.py                                  # a scratch database on 127.0.0.1
    python benchmarks/approvals.py --server postgresql+psycopg://postgres@db/postgres --tasks 200000

The deployment has one entity with an approval of one step whose approver is a user field,
so each of the 8 approvers decides their own requests at the same time (each decision is a
full action: row lock, task, timeline, status save with audit and event, notification).
The inbox part bulk-loads tasks straight into ``fw_task`` (most of them other users'
pending or decided tasks) and times the inbox query (``formwork.workflow.tasks.inbox``:
first page of 100, rows shaped for JSON) against one hand-written ``SELECT`` of the same
page fetched as plain rows, both on one held connection, interleaved call by call; the
medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from formwork.metadata import compile_project
from formwork.metadata.project import load_project
from formwork.records import Actor, RecordService
from formwork.storage import build_schema, make_engine, migrate
from formwork.workflow.actions import FlowEngine
from formwork.workflow.tasks import inbox

FILES = {
    "formwork.yaml": "name: bench\nmetadata: [metadata]\n",
    "metadata/request.yaml": """
        kind: entity
        name: bench_request
        title_field: title
        fields:
          title: {type: string, required: true}
          approver: {type: link, to: user}
        """,
    "metadata/approval.yaml": """
        kind: approval
        name: bench_approval
        entity: bench_request
        steps:
          - {name: review, approvers: {field: approver}}
        """,
}


def deployment(root: Path, url: str) -> tuple[FlowEngine, sa.Engine]:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), "utf-8")
    project = load_project(root, environ={"DATABASE_URL": url})
    app = compile_project(project)
    engine = make_engine(url, pool_size=20, max_overflow=5)
    migrate(engine, app, allow_destructive=False)
    return FlowEngine(RecordService(app, build_schema(app), engine)), engine


def decisions_per_second(flows: FlowEngine, approvers: int, per_approver: int) -> float:
    records = flows.records
    owner = records.create("user", {"username": "owner"}, Actor.system(), "seed")
    owner_actor = Actor(owner["id"], "owner")
    people = [records.create("user", {"username": f"approver{i}"}, Actor.system(), "seed") for i in range(approvers)]
    work: dict[int, list[int]] = {p["id"]: [] for p in people}
    for n in range(approvers * per_approver):
        person = people[n % approvers]
        request = records.create("bench_request", {"title": f"Request {n}", "approver": person["id"]}, owner_actor, "api")
        flows.act("bench_request", request["id"], "submit", owner_actor)
        work[person["id"]].append(request["id"])
    barrier = threading.Barrier(approvers + 1)

    def approve(person: dict) -> None:
        actor = Actor(person["id"], person["username"])
        barrier.wait()
        for record_id in work[person["id"]]:
            flows.act("bench_request", record_id, "approve", actor)

    threads = [threading.Thread(target=approve, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return approvers * per_approver / (time.perf_counter() - started)


def load_tasks(engine: sa.Engine, flows: FlowEngine, total: int, mine: int, users: int) -> int:
    """Bulk-load ``total`` tasks, ``mine`` of them pending for one user; return that user's id."""
    tables = flows.tables
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(tables["fw_user"].insert(), [{"username": f"bulk{i}", "version": 1} for i in range(users)])
        ids = [r.id for r in conn.execute(sa.select(tables["fw_user"].c.id).where(tables["fw_user"].c.username.like("bulk%")))]
        me = ids[0]
        instance = conn.execute(tables["fw_flow_instance"].insert().values(
            entity="bench_request", record_id=1, flow="bench_approval", definition={}, state="running", started_at=now,
        )).inserted_primary_key[0]
        batch = []
        for n in range(total):
            if n % (total // mine) == 0 and mine > 0:
                assignee, state = me, "pending"
                mine -= 1
            else:
                assignee, state = ids[1 + n % (len(ids) - 1)], ("pending" if n % 10 == 0 else "approved")
            batch.append({"instance_id": instance, "entity": "bench_request", "record_id": 1 + n % 5000, "flow": "bench_approval",
                          "title": f"Request {n}", "step_name": "review", "step_index": 0, "step_round": 1, "kind": "approve", "role": "group",
                          "assignee_id": assignee, "state": state, "created_at": now})
            if len(batch) == 10000:
                conn.execute(tables["fw_task"].insert(), batch)
                batch = []
        if batch:
            conn.execute(tables["fw_task"].insert(), batch)
        conn.execute(sa.text("ANALYZE fw_task"))
    return me


def time_inbox(engine: sa.Engine, flows: FlowEngine, me: int, repeats: int) -> tuple[float, float]:
    hand_written = sa.text(
        "SELECT id, entity, record_id, title, flow, step_name, state, kind, created_at, decided_at, comment FROM fw_task "
        "WHERE assignee_id = :me AND state = 'pending' AND kind = 'approve' ORDER BY id DESC LIMIT 100"
    )
    with engine.connect() as conn:
        inbox(conn, flows.tables, me, "waiting")  # warm up: compile the statements once
        conn.execute(hand_written, {"me": me}).fetchall()
        # interleaved, one call of each per round, so the machine's load falls on both alike
        ours_times, raw_times = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            assert len(inbox(conn, flows.tables, me, "waiting")) == 100
            ours_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert len(conn.execute(hand_written, {"me": me}).fetchall()) == 100
            raw_times.append(time.perf_counter() - started)
    return statistics.median(ours_times), statistics.median(raw_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--approvers", type=int, default=8)
    parser.add_argument("--per-approver", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--mine", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    name = f"formwork_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(args.server).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            flows, engine = deployment(Path(folder), url)
            rate = decisions_per_second(flows, args.approvers, args.per_approver)
            print(f"decisions: {rate:.0f}/s with {args.approvers} concurrent approvers ({args.approvers * args.per_approver} decisions)")
            me = load_tasks(engine, flows, args.tasks, args.mine, 1000)
            ours, raw = time_inbox(engine, flows, me, args.repeats)
            print(f"inbox 'waiting' (10,000 of {args.tasks:,} tasks, first 100): {ours * 1000:.2f} ms; "
                  f"hand-written SQL {raw * 1000:.2f} ms; ratio {ours / raw:.2f}")
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


if __name__ == "__main__":
    main()
