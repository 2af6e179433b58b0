"""``list`` and ``count``: simple filtered, sorted, paged reads for screens and the API."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import STATUS_FIELD, App, Entity, Field
from formwork.problems import did_you_mean
from formwork.records.coerce import WrongType, coerce_value
from formwork.records.errors import FieldError, RecordInvalid
from formwork.records.query import RecordQuery
from formwork.records.rows import record_columns, row_dict, select_record

# Types of the columns every table has, so filters on them convert like fields do.
SYSTEM_COLUMN_TYPES = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
    "created_by": "link",
    "updated_by": "link",
    "version": "integer",
    STATUS_FIELD: "string",
    "parent_id": "integer",
    "parent_field": "string",
    "row_order": "integer",
}


# Field types a search looks into.
TEXT_TYPES = ("string", "text", "email", "choice")


def _column_field(entity: Entity, name: str) -> Field | None:
    if name in entity.fields and entity.fields[name].is_stored:
        return entity.fields[name]
    if name in record_columns(entity):
        return Field(name=name, type=SYSTEM_COLUMN_TYPES[name])
    return None


def _unknown(entity: Entity, name: str, what: str) -> FieldError:
    hint = did_you_mean(name, record_columns(entity))
    suffix = f" ({hint})" if hint else ""
    return FieldError(name, "unknown_field", f"cannot {what} by '{name}': not a field of {entity.name}{suffix}")


def _conditions(app: App, entity: Entity, table: sa.Table, query: RecordQuery, limit: sa.ColumnElement[bool] | None, errors: list[FieldError]) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    for name, wanted in query.filters.items():
        fld = _column_field(entity, name)
        if fld is None:
            errors.append(_unknown(entity, name, "filter"))
            continue
        values = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
        try:
            typed = [coerce_value(fld, v) for v in values]
        except WrongType as wrong:
            errors.append(FieldError(name, "type", wrong.message))
            continue
        column = table.c[name]
        present = [v for v in typed if v is not None]
        options = [column.in_(present)] if present else []
        if len(present) < len(typed):
            options.append(column.is_(None))
        conditions.append(sa.or_(*options) if len(options) > 1 else options[0] if options else sa.false())
    if query.search:
        fields = query.search_fields or _default_search(app, entity)
        term = query.search.strip().lower()
        searchable = [f for f in fields if (fld := _column_field(entity, f)) is not None and fld.type in TEXT_TYPES]
        matches = [sa.func.lower(table.c[f]).contains(term, autoescape=True) for f in searchable]
        conditions.append(sa.or_(*matches) if matches else sa.false())
    if limit is not None:
        conditions.append(limit)
    return conditions


def _default_search(app: App, entity: Entity) -> tuple[str, ...]:
    form = app.form_for(entity.name)
    if form is not None and form.list.search:
        return form.list.search
    return (entity.title_field,) if entity.title_field else ()


def _order(entity: Entity, table: sa.Table, sort: tuple[str, ...], errors: list[FieldError]) -> list[sa.ColumnElement[Any]]:
    order: list[sa.ColumnElement[Any]] = []
    for key in sort:
        name = key.lstrip("-+")
        if _column_field(entity, name) is None:
            errors.append(_unknown(entity, name, "sort"))
            continue
        order.append(table.c[name].desc() if key.startswith("-") else table.c[name].asc())
    # id last keeps pages stable when the sort keys repeat
    order.append(table.c.id.asc())
    return order


def list_rows(conn: sa.Connection, app: App, entity: Entity, table: sa.Table, query: RecordQuery, limit: sa.ColumnElement[bool] | None) -> list[dict[str, Any]]:
    """The matching records (without child rows), sorted and paged."""
    errors: list[FieldError] = []
    conditions = _conditions(app, entity, table, query, limit, errors)
    order = _order(entity, table, query.sort, errors)
    if errors:
        raise RecordInvalid(errors)
    statement = select_record(table, entity).where(*conditions).order_by(*order).offset(max(query.offset, 0))
    if query.limit is not None:
        statement = statement.limit(max(query.limit, 0))
    columns = record_columns(entity)
    return [row_dict(row, columns) for row in conn.execute(statement).mappings()]


def count_rows(conn: sa.Connection, app: App, entity: Entity, table: sa.Table, query: RecordQuery, limit: sa.ColumnElement[bool] | None) -> int:
    """How many records match the filters and search."""
    errors: list[FieldError] = []
    conditions = _conditions(app, entity, table, query, limit, errors)
    if errors:
        raise RecordInvalid(errors)
    statement = sa.select(sa.func.count()).select_from(table).where(*conditions)
    return int(conn.execute(statement).scalar_one())
