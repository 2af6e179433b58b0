"""Reading records: table rows as plain dicts, with the child rows of table fields nested.

A record dict holds ``id``, the system columns, ``status`` when the entity has one, every
stored field, and for each table field the list of its rows in ``row_order`` (each row:
``id`` plus the child entity's fields). Times come out in UTC whatever the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import CHILD_FIELDS, STATUS_FIELD, SYSTEM_FIELDS, App, Entity
from formwork.records.coerce import to_utc
from formwork.records.limits import ID_RANGE


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


def select_record(table: sa.Table, entity: Entity) -> sa.Select[Any]:
    """SELECT of the columns of a record dict of ``entity``."""
    return sa.select(*[table.c[name] for name in record_columns(entity)])


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
        table = tables[child.name]
        columns = child_columns(child)
        query = (
            sa.select(table.c.parent_id, *[table.c[name] for name in columns])
            .where(table.c.parent_id.in_(parent_ids), table.c.parent_field == fld.name)
            .order_by(table.c.parent_id, table.c.row_order, table.c.id)
        )
        for row in conn.execute(query).mappings():
            nested[row["parent_id"]][fld.name].append(row_dict(row, columns))
    return nested


def read_record(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], entity: Entity, record_id: int) -> dict[str, Any] | None:
    """The record with its child rows, or None when there is no row with ``record_id``."""
    if not ID_RANGE[0] <= record_id <= ID_RANGE[1]:  # no row has it, and the database would refuse it
        return None
    table = tables[entity.name]
    row = conn.execute(select_record(table, entity).where(table.c.id == record_id)).mappings().first()
    if row is None:
        return None
    record = row_dict(row, record_columns(entity))
    record.update(read_children(conn, app, tables, entity, [record_id])[record_id])
    return record


def lookup_in(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table]) -> Callable[[str, Any], dict[str, Any] | None]:
    """A function reading one record (without child rows) by entity and id, for expressions
    that follow a link."""

    def lookup(entity: str, record_id: Any) -> dict[str, Any] | None:
        ent = app.entities.get(entity)
        if ent is None or record_id is None:
            return None
        table = tables[entity]
        row = conn.execute(select_record(table, ent).where(table.c.id == record_id)).mappings().first()
        return None if row is None else row_dict(row, record_columns(ent))

    return lookup
