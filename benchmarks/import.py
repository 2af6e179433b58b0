"""Import speed and memory: 100,000 CSV rows through ``formwork import``'s importer with full
validation, against a raw SQLAlchemy ``executemany`` of the same rows, in the same run.

    python benchmarks/import.py                      # SQLite, 100,000 rows
    python benchmarks/import.py --rows 20000 --pg postgresql+psycopg://postgres@127.0.0.1/bench
    DATABASE_URL=postgresql+psycopg://... python benchmarks/import.py

The entity has ten fields and a required link to department (given by name). Each import
runs in a child process, so its peak memory (max RSS) is its own: the figure after
loading the deployment, and at the end of the import. A smaller file is imported too,
to show that memory does not grow with the file. The raw baseline reads the same CSV,
converts the cells and resolves department names from a dict, and inserts in batches of
1,000 with one transaction: what a hand-written loader without validation, audit
trail or events would do.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

ENTITY = """
kind: entity
name: bench_item
title_field: code
fields:
  code: {type: string, required: true, max_length: 20}
  name: {type: string, max_length: 80}
  quantity: {type: integer, min: 0}
  price: {type: decimal, digits: [12, 2], min: 0}
  ordered_on: {type: date}
  category: {type: choice, options: [alpha, beta, gamma]}
  active: {type: boolean}
  email: {type: email}
  note: {type: text}
  department: {type: link, to: department, required: true}
"""
DEPARTMENTS = [f"Department {i}" for i in range(20)]
HEADER = ["code", "name", "quantity", "price", "ordered_on", "category", "active", "email", "note", "department"]
BATCH = 1000


def write_project(root: Path, url: str) -> None:
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "formwork.yaml").write_text(f"name: bench\nmetadata: [metadata]\ndatabase: {url}\n", encoding="utf-8")
    (root / "metadata" / "bench_item.yaml").write_text(textwrap.dedent(ENTITY), encoding="utf-8")


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow([
                f"IT-{i:07d}", f"item number {i} 物品", rng.randint(0, 500), f"{rng.randint(0, 99999)}.{rng.randint(0, 99):02d}",
                f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", rng.choice(["alpha", "beta", "gamma"]),
                rng.choice(["yes", "no"]), f"user{i}@example.com", "a note" if i % 3 else "", rng.choice(DEPARTMENTS),
            ])


def prepare(url: str, root: Path) -> None:
    """An empty, migrated database with the departments."""
    from formwork.metadata import compile_project
    from formwork.metadata.project import load_project
    from formwork.records import Actor
    from formwork.storage import make_engine, migrate
    from formwork.web.app import build_runtime

    project = load_project(root, environ={"DATABASE_URL": url})
    app = compile_project(project)
    database = sa.engine.make_url(url).database
    if url.startswith("sqlite") and database:
        for suffix in ("", "-wal", "-shm"):
            Path(database + suffix).unlink(missing_ok=True)
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    migrate(engine, app, allow_destructive=False)
    runtime = build_runtime(project, app, engine)
    runtime.records.create_many("department", [{"name": n} for n in DEPARTMENTS], Actor.system(), "cli")
    engine.dispose()


def child(root: Path, url: str, file: Path) -> None:
    """Run one import in this process and print its figures as JSON."""
    from formwork.metadata import compile_project
    from formwork.metadata.project import load_project
    from formwork.records import Actor
    from formwork.storage import make_engine
    from formwork.transfer import Importer, open_reader
    from formwork.web.app import build_runtime

    project = load_project(root, environ={"DATABASE_URL": url})
    runtime = build_runtime(project, compile_project(project), make_engine(url))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with file.open("rb") as stream:
        report = Importer(runtime.records, "bench_item", Actor.system()).run(open_reader(stream, file.name))
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "rows": report.rows, "created": report.created, "problems": report.problem_count,
                      "rss_loaded_kb": before, "rss_peak_kb": after}))


def run_child(root: Path, url: str, file: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(root), url, str(file)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"import child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_insert(url: str, root: Path, file: Path) -> float:
    """The baseline: the same rows with SQLAlchemy Core executemany, no validation."""
    prepare(url, root)
    from formwork.metadata import compile_project
    from formwork.metadata.project import load_project
    from formwork.storage import build_schema, make_engine

    app = compile_project(load_project(root, environ={"DATABASE_URL": url}))
    table = build_schema(app).table("bench_item")
    engine = make_engine(url)
    start = time.perf_counter()
    with engine.begin() as conn:
        departments = {name: i for i, name in conn.execute(sa.text("SELECT id, name FROM fw_department")).all()}
        now = datetime.now(UTC)
        batch: list[dict] = []
        with file.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for code, name, qty, price, ordered, category, active, email, note, dept in reader:
                batch.append({
                    "code": code, "name": name, "quantity": int(qty), "price": Decimal(price), "ordered_on": date.fromisoformat(ordered),
                    "category": category, "active": active == "yes", "email": email, "note": note or None,
                    "department": departments[dept], "version": 1, "created_at": now, "updated_at": now,
                })
                if len(batch) >= BATCH:
                    conn.execute(table.insert(), batch)
                    batch = []
        if batch:
            conn.execute(table.insert(), batch)
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds


def bench(label: str, url: str, rows: int, work: Path, small: int | None) -> None:
    root = work / label
    write_project(root, url)
    file = work / f"rows_{rows}.csv"
    if not file.exists():
        write_csv(file, rows)
    print(f"[{label}] {rows:,} rows, {file.stat().st_size / 1e6:.1f} MB CSV", flush=True)
    small_figures = None
    if small:
        small_file = work / f"rows_{small}.csv"
        if not small_file.exists():
            write_csv(small_file, small)
        prepare(url, root)
        small_figures = run_child(root, url, small_file)
    prepare(url, root)
    figures = run_child(root, url, file)
    if figures["created"] != rows:
        sys.exit(f"import wrote {figures['created']} of {rows} rows ({figures['problems']} problems)")
    raw = raw_insert(url, root, file)
    rate, raw_rate = rows / figures["seconds"], rows / raw
    print(f"[{label}] formwork import (validation, audit, events): {figures['seconds']:.1f} s = {rate:,.0f} rows/s", flush=True)
    print(f"[{label}] raw executemany:                            {raw:.1f} s = {raw_rate:,.0f} rows/s", flush=True)
    print(f"[{label}] ratio import/raw throughput: {rate / raw_rate:.3f} (import takes {figures['seconds'] / raw:.0f}x as long)", flush=True)
    print(f"[{label}] peak RSS: {figures['rss_loaded_kb'] / 1024:.0f} MB after loading, {figures['rss_peak_kb'] / 1024:.0f} MB at the end of {rows:,} rows", flush=True)
    if small_figures is not None:
        print(f"[{label}]           {small_figures['rss_peak_kb'] / 1024:.0f} MB at the end of {small:,} rows "
              f"({small / small_figures['seconds']:,.0f} rows/s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="rows of the smaller file for the memory comparison (0: skip)")
    parser.add_argument("--pg", default=os.environ.get("DATABASE_URL") if "postgresql" in os.environ.get("DATABASE_URL", "") else None,
                        help="a PostgreSQL database to run on as well (its public schema is dropped!)")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="formwork-bench-") as folder:
        work = Path(folder)
        if not args.skip_sqlite:
            bench("sqlite", f"sqlite:///{work / 'sqlite' / 'bench.db'}", args.rows, work, args.small or None)
        if args.pg:
            bench("postgresql", args.pg, args.rows, work, None)


if __name__ == "__main__":
    main()
