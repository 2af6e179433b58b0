"""Reading records: table rows as plain dicts, with the child rows of table fields nested.

A record dict holds ``id``, the system columns, ``status`` when the entity has one, every
stored field, and for each table field the list of its rows in ``row_order`` (each row:
``id`` plus the child entity's fields). Times come out in UTC whatever the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from formwork.metadata.model import CHILD_FIELDS, STATUS_FIELD, SYSTEM_FIELDS, App, Entity
from formwork.records.coerce import to_utc
from formwork.records.limits import ID_RANGE

# The key in ``Table.info`` under which statements and shapes built for that table are kept.
CACHE_KEY = "formwork.records"
# At most this many entries per table: list statements are kept per filter and sort shape,
# and requests choose those, so the store starts over rather than grow without end.
CACHE_SIZE = 200
T = TypeVar("T")


def cached(table: sa.Table, entity: Entity, key: Hashable, build: Callable[[], T]) -> T:
    """What ``build`` gives for ``table`` and ``entity``, built once and kept with the table.

    Reusing the same statement object is what makes SQLAlchemy's compiled cache cheap: a
    statement remembers its cache key, a new one has to compute it again. The entry is
    tied to the very ``table`` and ``entity`` objects, so a recompiled app gets fresh ones."""
    store: dict[Hashable, tuple[sa.Table, Entity, Any]] = table.info.setdefault(CACHE_KEY, {})
    hit = store.get(key)
    if hit is not None and hit[0] is table and hit[1] is entity:
        return hit[2]
    value = build()
    if len(store) >= CACHE_SIZE:
        store.clear()
    store[key] = (table, entity, value)
    return value


def record_columns(entity: Entity) -> list[str]:
    """The columns a record dict of ``entity`` shows (never internal ones like password hashes)."""
    names = list(SYSTEM_FIELDS)
    if entity.has_status and STATUS_FIELD not in entity.fields:
        names.append(STATUS_FIELD)
    if entity.is_child:
        names.extend(CHILD_FIELDS)
    names.extend(f.name for f in entity.stored_fields())
    return names


def child_columns(entity: Entity) -> list[str]:
    """The columns a nested child row shows: its id and its fields."""
    return ["id", *(f.name for f in entity.stored_fields())]


def _clean(value: Any) -> Any:
    return to_utc(value) if isinstance(value, datetime) else value


def row_dict(row: sa.RowMapping, columns: list[str]) -> dict[str, Any]:
    """A result row as a plain dict of ``columns`` with times in UTC."""
    return {name: _clean(row[name]) for name in columns}


def _is_time(column: sa.ColumnElement[Any]) -> bool:
    kind = column.type
    return isinstance(kind, sa.DateTime) or isinstance(getattr(kind, "impl", None), sa.DateTime)


@dataclass(frozen=True)
class RecordShape:
    """The columns of the record dicts of one entity, the SELECT of them, and which of them
    hold times (the only values ``read`` converts)."""

    columns: tuple[str, ...]
    select: sa.Select[Any]
    times: tuple[str, ...]

    def read(self, row: sa.Row[Any]) -> dict[str, Any]:
        """A result row of ``select`` (or of a statement with the same columns first) as a
        record dict with times in UTC."""
        record = dict(zip(self.columns, row, strict=False))
        for name in self.times:
            value = record[name]
            if value is not None:
                record[name] = to_utc(value)
        return record


def _shape(table: sa.Table, names: list[str]) -> RecordShape:
    columns = [table.c[name] for name in names]
    times = tuple(name for name, column in zip(names, columns, strict=True) if _is_time(column))
    return RecordShape(tuple(names), sa.select(*columns), times)


def record_shape(table: sa.Table, entity: Entity) -> RecordShape:
    """The ``RecordShape`` of record dicts of ``entity`` read from ``table`` (built once)."""
    return cached(table, entity, "record", lambda: _shape(table, record_columns(entity)))


def select_record(table: sa.Table, entity: Entity) -> sa.Select[Any]:
    """SELECT of the columns of a record dict of ``entity``."""
    return record_shape(table, entity).select


def _by_id(table: sa.Table, entity: Entity) -> sa.Select[Any]:
    """``select_record`` of the row whose id is the parameter ``fw_id`` (built once)."""
    return cached(table, entity, "by_id", lambda: select_record(table, entity).where(table.c.id == sa.bindparam("fw_id")))


def read_row(conn: sa.Connection, table: sa.Table, entity: Entity, record_id: Any) -> dict[str, Any] | None:
    """The record dict (without child rows) of the row with ``record_id``, or None."""
    row = conn.execute(_by_id(table, entity), {"fw_id": record_id}).first()
    return None if row is None else record_shape(table, entity).read(row)


def child_shape(table: sa.Table, child: Entity) -> RecordShape:
    """The ``RecordShape`` of the nested rows of child entity ``child`` (built once)."""
    return cached(table, child, "child", lambda: _shape(table, child_columns(child)))


def _children_query(table: sa.Table, child: Entity, field_name: str) -> tuple[RecordShape, sa.Select[Any]]:
    """(shape of a child row, SELECT of the rows of ``field_name`` of the parents in the
    expanding parameter ``fw_parents``), built once."""

    def build() -> tuple[RecordShape, sa.Select[Any]]:
        shape = child_shape(table, child)
        query = (
            shape.select.add_columns(table.c.parent_id)
            .where(table.c.parent_id.in_(sa.bindparam("fw_parents", expanding=True)), table.c.parent_field == field_name)
            .order_by(table.c.parent_id, table.c.row_order, table.c.id)
        )
        return shape, query

    return cached(table, child, ("children", field_name), build)


def read_children(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], entity: Entity, parent_ids: list[int]) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """parent id -> table field -> its rows in order, for every table field of ``entity``."""
    nested: dict[int, dict[str, list[dict[str, Any]]]] = {pid: {} for pid in parent_ids}
    for fld in entity.fields.values():
        if fld.type != "table" or not fld.entity:
            continue
        for pid in parent_ids:
            nested[pid][fld.name] = []
        if not parent_ids:
            continue
        child = app.entity(fld.entity)
        shape, query = _children_query(tables[child.name], child, fld.name)
        for row in conn.execute(query, {"fw_parents": parent_ids}):
            # parent_id comes after the child's own columns
            nested[row[-1]][fld.name].append(shape.read(row))
    return nested


def read_record(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], entity: Entity, record_id: int) -> dict[str, Any] | None:
    """The record with its child rows, or None when there is no row with ``record_id``."""
    if not ID_RANGE[0] <= record_id <= ID_RANGE[1]:  # no row has it, and the database would refuse it
        return None
    record = read_row(conn, tables[entity.name], entity, record_id)
    if record is None:
        return None
    record.update(read_children(conn, app, tables, entity, [record_id])[record_id])
    return record


def lookup_in(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table]) -> Callable[[str, Any], dict[str, Any] | None]:
    """A function reading one record (without child rows) by entity and id, for expressions
    that follow a link."""

    def lookup(entity: str, record_id: Any) -> dict[str, Any] | None:
        ent = app.entities.get(entity)
        if ent is None or record_id is None:
            return None
        return read_row(conn, tables[entity], ent, record_id)

    return lookup
