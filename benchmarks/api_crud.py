"""REST API throughput: Formwork against a hand-written Flask + SQLAlchemy + marshmallow app
(benchmarks/baseline_app.py), both under gunicorn on the same database, driven by one load
client in the same run.

    python benchmarks/api_crud.py                          # SQLite file in a temp folder
    python benchmarks/api_crud.py --pg postgresql+psycopg://postgres@127.0.0.1/postgres

The deployment has one entity, ``sales_order`` (11 fields of every common type, a required
link to ``customer`` and a child table ``lines``). It is migrated on a fresh database
(with ``--pg``, a new database on that server, dropped at the end) and seeded with
``--seed`` orders through ``RecordService``. Then, for each operation

- create: POST with 3 child rows,
- get: GET of a seeded record by id (with its child rows),
- list: GET of 50 records filtered on ``priority`` and sorted by ``-ordered_on`` (an index
  covers both),

the client runs ``--rounds`` rounds of ``--seconds`` each per server, alternating which
server goes first (A/B, B/A, ...) so that load from elsewhere on the machine falls on
both alike. It prints the median throughput of the rounds, the ratio Formwork / baseline
(goal >= 0.7) and p50/p95 latency over every request. The servers are stopped on exit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from bench_database import fresh_database

HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
ENTITIES = {
    "customer": """
        kind: entity
        name: customer
        title_field: name
        fields:
          name: {type: string, required: true, max_length: 80}
    """,
    "order_line": """
        kind: entity
        name: order_line
        fields:
          product: {type: string, required: true, max_length: 60}
          quantity: {type: integer, required: true, min: 1, max: 10000}
          unit_price: {type: decimal, digits: [12, 2], min: 0}
    """,
    "sales_order": """
        kind: entity
        name: sales_order
        title_field: title
        fields:
          title: {type: string, required: true, max_length: 120}
          notes: {type: text, max_length: 2000}
          quantity: {type: integer, min: 0, max: 100000}
          amount: {type: decimal, digits: [12, 2], min: 0}
          ordered_on: {type: date, required: true}
          urgent: {type: boolean, default: false}
          priority: {type: choice, options: [low, medium, high], default: low}
          contact: {type: email}
          reference: {type: string, max_length: 40, index: true}
          shipped_at: {type: datetime}
          customer: {type: link, to: customer, required: true}
          lines: {type: table, entity: order_line}
        indexes: [[priority, ordered_on]]
    """,
}
CUSTOMERS = 20
LIST_PATH = "/api/v1/sales_order?priority=high&sort=-ordered_on&limit=50"
OPERATIONS = ("create", "get", "list")


def order_body(rng: random.Random, customers: int, n: int) -> dict:
    """A valid sales order with three lines."""
    return {
        "title": f"Order {n} for the benchmark",
        "notes": "Deliver to the back door. " * rng.randint(0, 4),
        "quantity": rng.randint(0, 1000),
        "amount": rng.randint(0, 9_999_999) / 100,
        "ordered_on": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "urgent": rng.random() < 0.2,
        "priority": rng.choice(["low", "medium", "high"]),
        "contact": f"buyer{n}@example.com",
        "reference": f"REF-{n:08d}",
        "shipped_at": None,
        "customer": rng.randint(1, customers),
        "lines": [{"product": f"Part {k}", "quantity": rng.randint(1, 50), "unit_price": rng.randint(100, 99_999) / 100} for k in range(3)],
    }


def write_project(root: Path, url: str) -> None:
    (root / "metadata").mkdir(parents=True)
    (root / "formwork.yaml").write_text(f"name: crud_bench\nmetadata: [metadata]\ndatabase: '{url}'\n", encoding="utf-8")
    for name, text in ENTITIES.items():
        (root / "metadata" / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")


# The admin's token, set by prepare() (the Formwork API answers 401 without one).
AUTH: dict[str, str] = {}


def prepare(root: Path, url: str, seed: int) -> None:
    """Migrate the fresh database and seed customers and orders through RecordService;
    make an admin whose bearer token every request sends (the baseline ignores it)."""
    from formwork.metadata import compile_project, load_project
    from formwork.records import Actor
    from formwork.security.accounts import Accounts
    from formwork.storage import make_engine, migrate
    from formwork.web.app import build_runtime

    project = load_project(root, environ={"DATABASE_URL": url})
    app = compile_project(project)
    engine = make_engine(url)
    migrate(engine, app)
    records = build_runtime(project, app, engine).records
    records.create_many("customer", [{"name": f"Customer {i}"} for i in range(CUSTOMERS)], Actor.system(), "cli")
    rng = random.Random(3)
    records.create_many("sales_order", (order_body(rng, CUSTOMERS, n) for n in range(seed)), Actor.system(), "cli")
    accounts = Accounts(records)
    accounts.create_user("bench_admin", None, admin=True)
    AUTH["Authorization"] = f"Bearer {accounts.create_token('bench_admin').token}"
    engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen


def start_server(name: str, app: str, env: dict[str, str], workers: int, threads: int, log: Path) -> Server:
    port = free_port()
    command = [str(GUNICORN), "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
               "--bind", f"127.0.0.1:{port}", "--chdir", str(HERE), "--log-level", "warning", "--keep-alive", "30", app]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name, port, process)


def stop_servers(servers: list[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGTERM)
    for server in servers:
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {**AUTH, "Content-Type": "application/json"} if body is not None else dict(AUTH)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def wait_ready(server: Server, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            sys.exit(f"{server.name} server exited:\n{log.read_text(errors='replace')}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            status, _ = request(conn, "GET", LIST_PATH)
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{server.name} server not ready after {timeout:.0f} s:\n{log.read_text(errors='replace')}")


@dataclass
class Round:
    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def operation(name: str, seeded: int) -> Callable[[random.Random, int], tuple[str, str, bytes | None, int]]:
    """(method, path, body, expected status) of one request of operation ``name``."""
    counter = iter(range(10**9))

    def create(rng: random.Random, _thread: int) -> tuple[str, str, bytes | None, int]:
        return "POST", "/api/v1/sales_order", json.dumps(order_body(rng, CUSTOMERS, 10**7 + next(counter))).encode(), 201

    def get(rng: random.Random, _thread: int) -> tuple[str, str, bytes | None, int]:
        return "GET", f"/api/v1/sales_order/{rng.randint(1, seeded)}", None, 200

    def listing(_rng: random.Random, _thread: int) -> tuple[str, str, bytes | None, int]:
        return "GET", LIST_PATH, None, 200

    return {"create": create, "get": get, "list": listing}[name]


def drive(server: Server, op: str, seeded: int, threads: int, seconds: float, max_requests: int) -> Round:
    """``threads`` keep-alive connections sending ``op`` for ``seconds`` (or ``max_requests``)."""
    make = operation(op, seeded)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[str] = []
    stop_at = time.perf_counter() + seconds
    budget = iter(range(max_requests))

    def worker(index: int) -> None:
        rng = random.Random(index * 7919 + int(time.time()))
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        mine = latencies[index]
        while time.perf_counter() < stop_at and next(budget, None) is not None:
            method, path, body, expected = make(rng, index)
            start = time.perf_counter()
            try:
                status, payload = request(conn, method, path, body)
            except (OSError, http.client.HTTPException) as error:
                failures.append(f"{server.name} {method} {path}: {error!r}")
                break
            mine.append(time.perf_counter() - start)
            if status != expected:
                failures.append(f"{server.name} {method} {path}: {status} {payload[:300]!r}")
                break
        conn.close()

    began = time.perf_counter()
    # daemon threads: an interrupted run exits without waiting for their last request
    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        sys.exit(f"request failed: {failures[0]}")
    flat = [t for mine in latencies for t in mine]
    return Round(len(flat), elapsed, flat)


def check_same_answers(servers: list[Server]) -> None:
    """Both servers accept the same create body and show the same fields."""
    rng = random.Random(11)
    keys = []
    for server in servers:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, payload = request(conn, "POST", "/api/v1/sales_order", json.dumps(order_body(rng, CUSTOMERS, 9 * 10**8)).encode())
        if status != 201:
            sys.exit(f"{server.name}: create answered {status}: {payload[:500]!r}")
        created = json.loads(payload)
        status, payload = request(conn, "GET", LIST_PATH)
        items = json.loads(payload)["items"]
        if len(items) != 50:
            sys.exit(f"{server.name}: the list gave {len(items)} items, not 50")
        bad = dict(order_body(rng, CUSTOMERS, 1), quantity=-1, customer=10**6)
        status, payload = request(conn, "POST", "/api/v1/sales_order", json.dumps(bad).encode())
        if status != 422:
            sys.exit(f"{server.name}: a bad body answered {status}, not 422")
        conn.close()
        keys.append(sorted(created))
        print(f"  {server.name}: create -> {len(created)} keys, {len(created['lines'])} lines; list -> {len(items)} items; bad body -> 422")
    if keys[0] != keys[1]:
        print(f"  note: the records' keys differ: {sorted(set(keys[0]) ^ set(keys[1]))}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="a PostgreSQL server URL; a fresh database is created on it and dropped afterwards")
    parser.add_argument("--seed", type=int, default=3000, help="orders created before the measurements")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per operation and server")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of a round")
    parser.add_argument("--max-requests", type=int, default=20000, help="upper bound of requests per round")
    parser.add_argument("--threads", type=int, default=4, help="client connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    args = parser.parse_args()
    # a SIGTERM unwinds like Ctrl-C: the servers are stopped and the database dropped
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit("stopped by SIGTERM"))

    with tempfile.TemporaryDirectory(prefix="formwork-crud-") as folder, fresh_database(args.pg, Path(folder), "crud") as url:
        work = Path(folder)
        root = work / "project"
        write_project(root, url)
        started = time.perf_counter()
        prepare(root, url, args.seed)
        print(f"database: {sa.engine.make_url(url).get_backend_name()}, {args.seed} orders seeded in {time.perf_counter() - started:.1f} s")
        print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), {os.cpu_count()} cores")
        servers: list[Server] = []
        try:
            env = {"DATABASE_URL": url}
            servers.append(start_server("formwork", "formwork.web:wsgi", {**env, "FORMWORK_PROJECT": str(root)}, args.workers, args.threads, work / "formwork.log"))
            servers.append(start_server("baseline", "baseline_app:app", env, args.workers, args.threads, work / "baseline.log"))
            for server in servers:
                wait_ready(server, work / f"{server.name}.log")
                # every worker builds its app on its first requests: warm them all up
                for op in OPERATIONS:
                    drive(server, op, args.seed, args.threads, 1.0, 200)
            check_same_answers(servers)
            results: dict[tuple[str, str], list[Round]] = {}
            for op in OPERATIONS:
                for number in range(args.rounds):
                    for server in servers if number % 2 == 0 else reversed(servers):
                        results.setdefault((op, server.name), []).append(drive(server, op, args.seed, args.threads, args.seconds, args.max_requests))
                print(f"  {op}: done", flush=True)
        finally:
            stop_servers(servers)
        load = os.getloadavg()
        print(f"\n{args.threads} client threads, gunicorn {args.workers} workers x {args.threads} threads (gthread), "
              f"{args.rounds} rounds x {args.seconds:.0f} s per operation and server; load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'operation':<10}{'formwork req/s':>16}{'baseline req/s':>16}{'ratio':>8}   {'formwork p50/p95 ms':>20}{'baseline p50/p95 ms':>22}")
        for op in OPERATIONS:
            mine, theirs = results[(op, "formwork")], results[(op, "baseline")]
            rate = statistics.median(r.throughput for r in mine)
            base = statistics.median(r.throughput for r in theirs)
            lat = [t for r in mine for t in r.latencies]
            base_lat = [t for r in theirs for t in r.latencies]
            verdict = "ok" if rate / base >= 0.7 else "BELOW GOAL"
            print(f"{op:<10}{rate:>16.0f}{base:>16.0f}{rate / base:>8.2f}   "
                  f"{percentile(lat, 0.5) * 1000:>9.1f} / {percentile(lat, 0.95) * 1000:<8.1f}"
                  f"{percentile(base_lat, 0.5) * 1000:>11.1f} / {percentile(base_lat, 0.95) * 1000:<8.1f} {verdict}")
        print("goal: ratio >= 0.7 for each operation")


if __name__ == "__main__":
    main()
