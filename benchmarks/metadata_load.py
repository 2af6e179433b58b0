"""Benchmark: validate + compile a large app, and plan / migrate its database.

Generates a project of 300 entities x 25 fields, with a form per entity, roles,
approvals and reports, into a temporary folder, then prints medians of:

- validate+compile time, and its ratio to a bare ``yaml.safe_load`` of the same files
  (the baseline, measured in the same run; goal: ratio <= 3);
- the first migrate on an empty SQLite database;
- plan against the up-to-date SQLite database (goal: < 1 s), and after one entity changed.

Run: ``python benchmarks/metadata_load.py [--entities 300] [--fields 25] [--runs 5]``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from formwork.metadata import compile_project, load_project
from formwork.metadata.model import Field
from formwork.storage import make_engine, migrate, plan_migration

FIELD_CYCLE = ("string", "text", "integer", "decimal", "boolean", "date", "datetime", "choice", "email", "link")


def entity_file(i: int, fields: int) -> dict:
    """One entity with ``fields`` fields of every type, links to an earlier entity and a check."""
    spec: dict = {"title": {"type": "string", "required": True, "max_length": 120, "label": {"en": f"Title {i}", "zh": f"标题 {i}"}}}
    for j in range(1, fields):
        kind = FIELD_CYCLE[j % len(FIELD_CYCLE)]
        name = f"f{j:02d}_{kind}"
        if kind == "choice":
            spec[name] = {"type": "choice", "options": ["low", "medium", "high"], "default": "low"}
        elif kind == "link":
            spec[name] = {"type": "link", "to": f"entity_{i - 1:03d}" if i else "department"}
        elif kind == "decimal":
            spec[name] = {"type": "decimal", "digits": [12, 2], "min": 0}
        elif kind == "integer":
            spec[name] = {"type": "integer", "check": f"{name} is None or {name} >= 0", "message": "must not be negative"}
        else:
            spec[name] = {"type": kind, "label": {"en": f"Field {j}", "zh": f"字段 {j}"}}
    spec["amount"] = {"type": "decimal", "digits": [14, 2], "compute": "f03_decimal * 2 if f03_decimal is not None else None"}
    return {
        "kind": "entity",
        "name": f"entity_{i:03d}",
        "label": {"en": f"Entity {i}", "zh": f"实体 {i}"},
        "title_field": "title",
        "fields": spec,
        "indexes": [["title", "f05_date"]],
    }


def form_file(i: int, names: list[str]) -> dict:
    return {
        "kind": "form",
        "name": f"entity_{i:03d}",
        "entity": f"entity_{i:03d}",
        "layout": [
            {"section": "Main", "name": "main", "columns": 2, "fields": names[: len(names) // 2]},
            {"section": "More", "name": "more", "fields": names[len(names) // 2 :], "visible_if": "f03_decimal > 100"},
        ],
        "list": {"columns": names[:5], "filters": [names[7]], "search": ["title"], "sort": ["-created_at"]},
    }


def approval_file(i: int) -> dict:
    return {
        "kind": "approval",
        "name": f"entity_{i:03d}_approval",
        "entity": f"entity_{i:03d}",
        "steps": [
            {"name": "manager", "approvers": {"manager_of": "created_by"}},
            {"name": "finance", "when": "f03_decimal > 5000", "approvers": {"role": "role_00"}, "mode": "all"},
        ],
        "remind": {"after": "24h", "every": "24h"},
    }


def report_file(i: int) -> dict:
    return {
        "kind": "report",
        "name": f"report_{i:03d}",
        "title": f"Report {i}",
        "source": f"entity_{i:03d}",
        "params": {"period": {"type": "daterange", "default": "this_year"}},
        "filter": "created_at in $period",
        "group_by": ["f07_choice", "month(created_at)"],
        "measures": {"total": "sum(f03_decimal)", "rows": "count()"},
        "chart": {"type": "bar", "x": "f07_choice", "y": "total"},
    }


def role_file(r: int, entities: list[str]) -> dict:
    return {
        "kind": "role",
        "name": f"role_{r:02d}",
        "grants": {name: {"actions": ["create", "read", "update", "report"], "rows": "own" if r % 2 else "all"} for name in entities},
    }


def generate(root: Path, entities: int, fields: int) -> list[Path]:
    """Write the project; return every metadata file written."""
    (root / "formwork.yaml").write_text(
        yaml.safe_dump({"name": "bench", "version": "1", "metadata": ["metadata"], "database": f"sqlite:///{root / 'bench.db'}"})
    )
    files: list[Path] = []

    def write(folder: str, name: str, data: dict) -> None:
        path = root / "metadata" / folder / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        files.append(path)

    names: list[str] = []
    for i in range(entities):
        data = entity_file(i, fields)
        names.append(data["name"])
        folder = f"module_{i // 30:02d}"
        write(folder, data["name"], data)
        write(folder, f"{data['name']}_form", form_file(i, list(data["fields"])))
        if i % 5 == 0:
            write(folder, f"{data['name']}_approval", approval_file(i))
        if i % 10 == 0:
            write(folder, f"report_{i:03d}", report_file(i))
    for r in range(max(1, entities // 10)):
        write("roles", f"role_{r:02d}", role_file(r, names[r * 10 : r * 10 + 10]))
    return files


def median_time(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=300)
    parser.add_argument("--fields", type=int, default=25)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        files = generate(root, args.entities, args.fields)
        project = load_project(root)

        def bare_load() -> None:
            for path in files:
                with open(path, encoding="utf-8") as handle:
                    yaml.safe_load(handle)

        baseline = median_time(bare_load, args.runs)
        compile_time = median_time(lambda: compile_project(project), args.runs)
        app = compile_project(project)
        print(f"project: {len(files)} files, {len(app.entities)} entities, {sum(len(e.fields) for e in app.entities.values())} fields")
        print(f"yaml.safe_load of every file (baseline): {baseline:.3f} s")
        print(f"validate + compile:                       {compile_time:.3f} s  = {compile_time / baseline:.2f}x baseline (goal <= 3x)")

        engine = make_engine(project.database_url)
        start = time.perf_counter()
        migrate(engine, app)
        print(f"first migrate (SQLite, empty database):  {time.perf_counter() - start:.3f} s")
        plan_time = median_time(lambda: plan_migration(engine, app), args.runs)
        assert plan_migration(engine, app).is_empty
        print(f"plan, database up to date (SQLite):       {plan_time:.3f} s  (goal < 1 s)")

        # One entity gains a field: only its table is compared again.
        first = app.entities["entity_000"]
        grown = dataclasses.replace(first, fields={**first.fields, "extra": Field(name="extra", type="string")})
        changed = dataclasses.replace(app, entities={**app.entities, first.name: grown}, metadata_hash=app.metadata_hash + "+extra")
        changed_time = median_time(lambda: plan_migration(engine, changed), args.runs)
        print(f"plan, one entity changed (SQLite):        {changed_time:.3f} s")
        engine.dispose()


if __name__ == "__main__":
    main()
