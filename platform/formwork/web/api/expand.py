"""``?expand=``: link fields shown as the linked records instead of their ids.

An expand path names link fields, through links and table fields: ``department``,
``department.manager``, ``lines.product``. Each link on the path becomes the linked
record as ``GET /api/v1/<target>/<id>`` shows it, without its child rows; a record the
caller may not read stays ``{"id": n}``. Linked records are read with one query per link
field and page, never one per record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from formwork.metadata.model import SYSTEM_FIELD_TYPES, App, Entity
from formwork.problems import did_you_mean
from formwork.records import FieldError

# How many links one expand path may follow.
MAX_DEPTH = 3

# (entity, ids) -> dumped records of those ids the caller may read
Fetch = Callable[[str, list[int]], list[dict[str, Any]]]


def _step(app: App, entity: Entity, name: str) -> tuple[str, str] | None:
    """("link" | "table", target entity) of field ``name``, or None when it is neither."""
    if name in SYSTEM_FIELD_TYPES and SYSTEM_FIELD_TYPES[name].startswith("link:"):
        return "link", SYSTEM_FIELD_TYPES[name].split(":", 1)[1]
    fld = entity.fields.get(name)
    if fld is not None and fld.type == "link" and fld.to in app.entities:
        return "link", fld.to
    if fld is not None and fld.type == "table" and fld.entity in app.entities:
        return "table", fld.entity
    return None


def check_paths(app: App, entity: Entity, paths: tuple[str, ...]) -> list[FieldError]:
    """Problems with ``paths``: names that are not link or table fields, a path that ends
    in a table field, paths too deep."""
    errors: list[FieldError] = []
    for path in paths:
        current = entity
        names = path.split(".")
        if len(names) > MAX_DEPTH:
            errors.append(FieldError("expand", "expand", f"'{path}' follows more than {MAX_DEPTH} links"))
            continue
        for index, name in enumerate(names):
            step = _step(app, current, name)
            if step is None:
                choices = [n for n in [*SYSTEM_FIELD_TYPES, *current.fields] if _step(app, current, n)]
                hint = did_you_mean(name, choices)
                errors.append(FieldError("expand", "expand", f"'{name}' in '{path}' is not a link or table field of {current.name}" + (f" ({hint})" if hint else "")))
                break
            if step[0] == "table" and index == len(names) - 1:
                errors.append(FieldError("expand", "expand", f"'{path}' ends in a table field; name a link of its rows, like {path}.<link>"))
                break
            current = app.entity(step[1])
    return errors


def tables_needed(paths: tuple[str, ...]) -> set[str]:
    """The first names of ``paths``: table fields among them must be read for a list."""
    return {path.split(".", 1)[0] for path in paths}


def expand(app: App, entity: Entity, records: list[dict[str, Any]], paths: tuple[str, ...], fetch: Fetch) -> None:
    """Replace the link ids named by ``paths`` in ``records`` (dumped records) by records."""
    for path in sorted(paths, key=lambda p: p.count(".")):
        _expand(app, entity, records, path.split("."), fetch)


def _expand(app: App, entity: Entity, records: list[dict[str, Any]], names: list[str], fetch: Fetch) -> None:
    name, rest = names[0], names[1:]
    kind, target_name = _step(app, entity, name) or ("", "")
    target = app.entity(target_name)
    if kind == "table":
        rows = [row for record in records for row in record.get(name) or []]
        if rest:
            _expand(app, target, rows, rest, fetch)
        return
    wanted = sorted({r[name] for r in records if isinstance(r.get(name), int)})
    found = {linked["id"]: linked for linked in fetch(target_name, wanted)} if wanted else {}
    for record in records:
        value = record.get(name)
        if isinstance(value, int):
            record[name] = found.get(value, {"id": value})
    if rest:
        linked = [r[name] for r in records if isinstance(r.get(name), dict)]
        unique = list({id(x): x for x in linked}.values())
        _expand(app, target, unique, rest, fetch)
