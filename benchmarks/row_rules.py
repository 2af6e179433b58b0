"""Benchmark: row rules run in SQL, and what authentication costs per request.

Builds a deployment with one entity (``claim``: title, department link (indexed), amount)
and two roles reading it: ``everything`` (``rows: all``) and ``own_department``
(``rows: "department == $user.department"``). Fills ``claim`` with 1,000,000 rows
(executemany batches), then prints medians of:

- listing 50 claims through ``RecordService.list`` as a user with the expression rule,
  and as a user with ``rows: all`` (the baseline, same run); goal: ratio <= 1.2;
- a request through a Flask test client authenticated by a bearer token, by a login
  session, and unauthenticated (the baseline), as ratios.

Run: ``python benchmarks/row_rules.py [--rows 1000000] [--runs 30] [--pg postgresql+psycopg://...]``
(without --pg: a SQLite file in a temporary folder).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flask
import sqlalchemy as sa

from formwork.metadata import compile_project, load_project
from formwork.plugins import load_plugins
from formwork.records import RecordQuery, RecordService
from formwork.security import RolePolicy, load_actor
from formwork.security.accounts import Accounts
from formwork.storage import build_schema, make_engine, migrate
from formwork.web.assets import ui_root
from formwork.web.auth import current_actor, init_auth, login_required
from formwork.web.runtime import Runtime

FILES = {
    "claim.yaml": "kind: entity\nname: claim\ntitle_field: title\nfields:\n  title: {type: string, required: true}\n"
                  "  department: {type: link, to: department}\n  amount: {type: decimal, digits: [12, 2]}\n",
    "everything.yaml": "kind: role\nname: everything\ngrants:\n  claim: {actions: [read], rows: all}\n",
    "own_department.yaml": "kind: role\nname: own_department\ngrants:\n"
                           "  claim: {actions: [read], rows: \"department == $user.department\"}\n",
}
DEPARTMENTS = 20
BATCH = 20_000
PASSWORD = "benchmark password"


def write_project(root: Path, url: str) -> Path:
    (root / "metadata").mkdir(parents=True)
    (root / "formwork.yaml").write_text(f"name: bench\nmetadata: [metadata]\ndatabase: {url}\nsecret_key: bench\n", "utf-8")
    for name, text in FILES.items():
        (root / "metadata" / name).write_text(text, "utf-8")
    return root


def timings(actions: list[Callable[[], object]], runs: int) -> list[list[float]]:
    """Every run's time of each action; runs are interleaved, so a busy machine slows all alike."""
    for action in actions:
        action()  # warm caches and the connection pool
    times: list[list[float]] = [[] for _ in actions]
    gc.collect()
    gc.disable()  # as timeit does: a collection would land on whichever action runs then
    try:
        for _ in range(runs):
            for action, spent in zip(actions, times, strict=True):
                start = time.perf_counter()
                action()
                spent.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def medians(actions: list[Callable[[], object]], runs: int) -> list[float]:
    """The median time of each action (see ``timings``)."""
    return [statistics.median(spent) for spent in timings(actions, runs)]


def fill(engine: sa.Engine, table: sa.Table, rows: int, department_ids: list[int]) -> None:
    """``rows`` claims spread over the departments, inserted in batches."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for first in range(0, rows, BATCH):
        batch = [
            {"title": f"claim {n}", "department": rng.choice(department_ids), "amount": n % 1000, "created_at": now,
             "updated_at": now, "version": 1}
            for n in range(first, min(first + BATCH, rows))
        ]
        with engine.begin() as conn:
            conn.execute(table.insert(), batch)
    print(f"filled {rows:,} rows in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pg", help="a PostgreSQL URL of an empty database to use instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.pg or f"sqlite:///{Path(folder) / 'bench.db'}"
        project = load_project(write_project(Path(folder) / "bench", url), environ={})
        hooks = load_plugins(project.plugin_dirs, project.display)
        app = compile_project(project, hooks)
        engine = make_engine(url)
        migrate(engine, app)
        schema = build_schema(app)
        records = RecordService(app, schema, engine, hooks, policy=RolePolicy(app, schema.tables, engine))
        accounts = Accounts(records)
        department_ids = [accounts.create_department(f"Department {i}", code=f"D{i}")["id"] for i in range(DEPARTMENTS)]
        accounts.create_user("wide", PASSWORD, roles=["everything"], department="D3")
        accounts.create_user("narrow", PASSWORD, roles=["own_department"], department="D3")
        fill(engine, schema.tables["claim"], args.rows, department_ids)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE claim"))
        with engine.connect() as conn:
            wide = load_actor(conn, app, schema, accounts.user_id(conn, "wide"))
            narrow = load_actor(conn, app, schema, accounts.user_id(conn, "narrow"))
        assert wide is not None and narrow is not None

        page = RecordQuery(limit=50, sort=("-id",))
        assert len(records.list("claim", narrow, page)) == 50
        assert {r["department"] for r in records.list("claim", narrow, page)} == {department_ids[3]}
        rules, alls = timings([lambda: records.list("claim", narrow, page), lambda: records.list("claim", wide, page)], args.runs)
        rule, everything = statistics.median(rules), statistics.median(alls)
        print(f"{engine.dialect.name}: list 50 of {args.rows:,} rows, median of {args.runs}: rows: all {everything * 1000:.2f} ms, "
              f"department == $user.department {rule * 1000:.2f} ms, ratio {rule / everything:.2f} (goal <= 1.2)")
        # on a loaded machine the medians drift between batches; the fastest runs do not
        print(f"  fastest runs: rows: all {min(alls) * 1000:.2f} ms, rule {min(rules) * 1000:.2f} ms, ratio {min(rules) / min(alls):.2f}")

        client, token = web_client(project, app, schema, engine, records, accounts)
        session = session_login(client.application)
        runs = timings([
            lambda: client.get("/api/open"),
            lambda: client.get("/api/me", headers={"Authorization": f"Bearer {token}"}),
            lambda: session.get("/api/me"),
        ], args.runs * 10)
        anonymous, bearer, with_session = (statistics.median(r) for r in runs)
        fastest = [min(r) for r in runs]
        (login,) = medians([lambda: session_login(client.application)], 5)
        print(f"request: unauthenticated {anonymous * 1000:.2f} ms, bearer token {bearer * 1000:.2f} ms "
              f"(ratio {bearer / anonymous:.2f}), login session {with_session * 1000:.2f} ms (ratio {with_session / anonymous:.2f}); "
              f"one login (scrypt) {login * 1000:.0f} ms")
        print(f"  fastest runs: unauthenticated {fastest[0] * 1000:.2f} ms, bearer {fastest[1] * 1000:.2f} ms "
              f"(ratio {fastest[1] / fastest[0]:.2f}), session {fastest[2] * 1000:.2f} ms (ratio {fastest[2] / fastest[0]:.2f})")
        engine.dispose()


def web_client(project, app, schema, engine, records: RecordService, accounts: Accounts) -> tuple[flask.testing.FlaskClient, str]:
    """A Flask app with ``init_auth``, an open route and one that needs an actor."""
    ui = ui_root()
    web = flask.Flask("bench", template_folder=str(ui / "templates"), static_folder=str(ui / "static"))
    web.config.update(SECRET_KEY="bench")
    web.extensions["formwork"] = Runtime(project=project, app_model=app, schema=schema, engine=engine, records=records,
                                         hooks=records.hooks)
    init_auth(web)

    @web.get("/api/open")
    def open_route() -> flask.Response:
        return flask.jsonify(ok=True)

    @web.get("/api/me")
    @login_required
    def me() -> flask.Response:
        return flask.jsonify(user=current_actor().username)

    issued = accounts.create_token("narrow", timedelta(days=1))
    return web.test_client(), issued.token


def session_login(web: flask.Flask) -> flask.testing.FlaskClient:
    """A client logged in through the login form."""
    client = web.test_client()
    page = client.get("/login").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/login", data={"username": "narrow", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.text
    return client


if __name__ == "__main__":
    main()
