"""Writing rows: the versioned INSERT/UPDATE/DELETE of a record and of its child rows.

A database refusal that a user caused (a unique value taken by a concurrent write
between our check and our write) becomes the same ``RecordInvalid`` the check would
have given; anything else is our bug and propagates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import STATUS_FIELD, Entity
from formwork.records.actor import Actor
from formwork.records.coerce import WrongType, coerce_value
from formwork.records.errors import FieldError, RecordInvalid
from formwork.records.limits import column_problems
from formwork.records.rows import cached, child_shape, record_shape
from formwork.records.rules import unique_message

SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


def violated_unique(error: sa.exc.IntegrityError, table: sa.Table) -> tuple[str, ...] | None:
    """The columns of the unique constraint ``error`` reports on ``table``, if it is one."""
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint) and constraint.name == name:
                return tuple(c.name for c in constraint.columns)
        for index in table.indexes:
            if index.unique and index.name == name:
                return tuple(c.name for c in index.columns)
        return None
    found = SQLITE_UNIQUE.search(str(error.orig))
    if not found:
        return None
    columns = [part.strip() for part in found.group(1).split(",")]
    if not all(c.startswith(f"{table.name}.") for c in columns):
        return None
    return tuple(c.split(".", 1)[1] for c in columns)


def guarded(conn: sa.Connection, statement: sa.Executable, entity: Entity, table: sa.Table, record: Mapping[str, Any], prefix: str = "", params: Mapping[str, Any] | None = None) -> sa.CursorResult[Any]:
    """Execute a write (with ``params``); a unique violation becomes ``RecordInvalid`` with
    the check's message."""
    try:
        return conn.execute(statement, params)
    except sa.exc.IntegrityError as error:
        columns = violated_unique(error, table)
        if columns is None or not all(c in entity.fields for c in columns):
            raise
        message = unique_message(entity, columns, record)
        raise RecordInvalid([FieldError(f"{prefix}{columns[0]}", "unique", message)]) from error


def column_values(entity: Entity, record: Mapping[str, Any]) -> dict[str, Any]:
    """The stored field values (and status) of ``record``, as columns to write."""
    values = {f.name: record.get(f.name) for f in entity.stored_fields()}
    if entity.has_status and STATUS_FIELD not in entity.fields:
        values[STATUS_FIELD] = record.get(STATUS_FIELD)
    return values


def fitted(entity: Entity, table: sa.Table, values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``values`` typed for their columns; raises ``RecordInvalid`` for any the columns cannot
    hold. Validation refuses such values first; this catches those a ``before_save`` hook set
    afterwards, which would otherwise reach the database as an error."""
    typed = dict(values)
    errors: list[FieldError] = []
    for name, value in values.items():
        fld = entity.fields.get(name)
        if fld is None or fld.type == "table":
            continue
        try:
            typed[name] = coerce_value(fld, value)
        except WrongType as wrong:
            errors.append(FieldError(f"{prefix}{name}", "type", wrong.message))
            continue
        problems = column_problems(table.c[name], typed[name])
        if fld.type == "choice" and fld.options and typed[name] is not None and typed[name] not in fld.option_values:
            problems.append(("choice", "must be one of: " + ", ".join(fld.option_values)))
        errors += [FieldError(f"{prefix}{name}", code, message) for code, message in problems]
    if errors:
        raise RecordInvalid(errors)
    return typed


# Statements built once per table and run with the values as parameters, so SQLAlchemy
# finds them compiled in its cache; the parameter names of their WHERE clauses (``fw_...``)
# cannot be column names, which are snake_case field names.


def _insert(table: sa.Table, entity: Entity) -> sa.Insert:
    return cached(table, entity, "insert", lambda: table.insert().returning(table.c.id))


def _update(table: sa.Table, entity: Entity) -> sa.Update:
    return cached(table, entity, "update", lambda: table.update().where(table.c.id == sa.bindparam("fw_id"), table.c.version == sa.bindparam("fw_version")))


def _update_child(table: sa.Table, entity: Entity) -> sa.Update:
    return cached(table, entity, "update_child", lambda: table.update().where(table.c.id == sa.bindparam("fw_id")).values(version=table.c.version + 1))


def _new_row(entity: Entity, table: sa.Table, record: Mapping[str, Any], actor: Actor, now: datetime, extra: Mapping[str, Any] | None, prefix: str) -> dict[str, Any]:
    """The column values of a new row of ``record`` at version 1."""
    values = fitted(entity, table, column_values(entity, record), prefix)
    values.update(created_at=now, updated_at=now, created_by=actor.user_id, updated_by=actor.user_id, version=1)
    values.update(extra or {})
    return values


def insert_row(conn: sa.Connection, table: sa.Table, entity: Entity, record: Mapping[str, Any], actor: Actor, now: datetime, extra: Mapping[str, Any] | None = None, prefix: str = "") -> int:
    """Insert a new row at version 1 and return its id."""
    values = _new_row(entity, table, record, actor, now, extra, prefix)
    return int(guarded(conn, _insert(table, entity), entity, table, record, prefix, values).scalar_one())


def _insert_record(table: sa.Table, entity: Entity) -> sa.Insert:
    """INSERT of a record's row returning its columns as a read selects them (built once)."""
    return cached(table, entity, "insert_record", lambda: table.insert().returning(*record_shape(table, entity).select.selected_columns))


def insert_record(conn: sa.Connection, table: sa.Table, entity: Entity, record: Mapping[str, Any], actor: Actor, now: datetime) -> dict[str, Any]:
    """Insert a new record's row at version 1 and return it as stored: the record dict a
    read gives (without child rows), from the database's ``RETURNING`` (decimals with the
    column's places, JSON as the database keeps it)."""
    values = _new_row(entity, table, record, actor, now, None, "")
    row = guarded(conn, _insert_record(table, entity), entity, table, record, "", values).one()
    return record_shape(table, entity).read(row)


def _insert_child(table: sa.Table, child: Entity) -> sa.Insert:
    """INSERT of a child row returning its columns as a read nests them, then ``row_order``."""
    return cached(table, child, "insert_child", lambda: table.insert().returning(*child_shape(table, child).select.selected_columns, table.c.row_order))


def insert_rows(conn: sa.Connection, tables: Mapping[str, sa.Table], field_name: str, child: Entity, parent_id: int, rows: list[dict[str, Any]], actor: Actor, now: datetime) -> list[dict[str, Any]]:
    """Insert the rows of table field ``field_name`` of the new record ``parent_id`` in order
    and return them as stored, as a read nests them.

    Without unique rules on the child table the rows go in with one statement; with them,
    one at a time, so a refusal names its row. A row carrying an ``id`` (a ``before_save``
    hook may add one after validation refused such rows) is refused: a new record has none."""
    table = tables[child.name]
    statement = _insert_child(table, child)
    together = not _has_unique(table)
    params: list[dict[str, Any]] = []
    stored: list[sa.Row[Any]] = []
    for index, row in enumerate(rows):
        prefix = f"{field_name}[{index}]."
        if row.get("id") is not None:
            fitted(child, table, column_values(child, row), prefix)
            raise RecordInvalid([FieldError(f"{prefix}id", "row", f"is not a row of this record (id {row['id']})")])
        values = _new_row(child, table, row, actor, now, {"parent_id": parent_id, "parent_field": field_name, "row_order": index}, prefix)
        if together:
            params.append(values)
        else:
            stored.append(guarded(conn, statement, child, table, row, prefix, values).one())
    if params:
        # RETURNING does not promise the parameters' order for several rows; row_order (the last column) restores it
        stored = sorted(conn.execute(statement, params), key=lambda found: found[-1])
    shape = child_shape(table, child)
    return [shape.read(found) for found in stored]


def update_row(conn: sa.Connection, table: sa.Table, entity: Entity, record_id: int, version: int, changed: Mapping[str, Any], record: Mapping[str, Any], actor: Actor, now: datetime, prefix: str = "") -> bool:
    """Write ``changed`` columns if the row still has ``version``; bump the version.

    Returns False when no row matched: someone else changed or deleted it meanwhile."""
    params = fitted(entity, table, changed, prefix)
    params.update(version=version + 1, updated_at=now, updated_by=actor.user_id, fw_id=record_id, fw_version=version)
    return guarded(conn, _update(table, entity), entity, table, record, prefix, params).rowcount == 1


def _has_unique(table: sa.Table) -> bool:
    """True when some write to ``table`` can break a unique rule (besides the id)."""
    return any(isinstance(c, sa.UniqueConstraint) for c in table.constraints) or any(i.unique for i in table.indexes)


def replace_rows(conn: sa.Connection, tables: Mapping[str, sa.Table], field_name: str, child: Entity, parent_id: int, old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]], actor: Actor, now: datetime) -> None:
    """Make the rows of table field ``field_name`` of ``parent_id`` equal ``new_rows`` in order:
    rows carrying an ``id`` are updated in place, the others inserted, the missing deleted."""
    table = tables[child.name]
    kept = {row["id"] for row in new_rows if row.get("id") is not None}
    gone = [row["id"] for row in old_rows if row["id"] not in kept]
    if gone:
        conn.execute(table.delete().where(table.c.id.in_(gone)))
    before = {row["id"]: row for row in old_rows}
    # Without unique rules no insert can fail on a row's values, so the new rows go in
    # together at the end (in order, so their ids still follow it); with them, one at a
    # time, so a refusal names its row.
    together = not _has_unique(table)
    added: list[dict[str, Any]] = []
    for index, row in enumerate(new_rows):
        prefix = f"{field_name}[{index}]."
        if row.get("id") is None:
            extra = {"parent_id": parent_id, "parent_field": field_name, "row_order": index}
            if together:
                added.append(_new_row(child, table, row, actor, now, extra, prefix))
            else:
                insert_row(conn, table, child, row, actor, now, extra, prefix)
            continue
        values = fitted(child, table, column_values(child, row), prefix)
        old = before.get(row["id"])
        if old is None:
            # validation refuses such rows; a before_save hook may still have added one
            raise RecordInvalid([FieldError(f"{prefix}id", "row", f"is not a row of this record (id {row['id']})")])
        changed = {k: v for k, v in values.items() if old.get(k) != v}
        changed.update(row_order=index, updated_at=now, updated_by=actor.user_id, fw_id=row["id"])
        guarded(conn, _update_child(table, child), child, table, row, prefix, changed)
    if added:
        conn.execute(table.insert(), added)


def delete_rows(conn: sa.Connection, tables: Mapping[str, sa.Table], entity: Entity, parent_id: int) -> None:
    """Delete every child row of ``parent_id`` (whatever the foreign keys say)."""
    for fld in entity.fields.values():
        if fld.type == "table" and fld.entity:
            table = tables[fld.entity]
            conn.execute(table.delete().where(table.c.parent_id == parent_id, table.c.parent_field == fld.name))
