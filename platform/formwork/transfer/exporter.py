"""Export: an entity's records streamed out to a CSV or XLSX file.

Rows are read with a streaming cursor (``yield_per``: a server-side cursor on
PostgreSQL) and written as they come, so memory stays flat. Headers are the fields'
labels in the deployment's default locale (or their names); links are written as the
target record's title, so an exported file imports again unchanged.

``RecordService.list`` returns whole lists, so the export reads the table itself, under
the same permission seam: the policy authorizes ``read`` and ``export``, its
``row_filter`` (for both) limits the rows and its ``hidden_fields`` are left out; a link
to a record the actor may not read is written as its id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from formwork.expressions import EvalContext, ExpressionError, FieldScope, SqlScope, check, compile_sql, parse
from formwork.metadata.model import Entity, Field, naming_field
from formwork.problems import did_you_mean
from formwork.records import Actor, RecordInvalid, RecordQuery, RecordService
from formwork.records.coerce import to_utc
from formwork.transfer.headers import exported_fields, header_of
from formwork.transfer.tabular import TableWriter

HEADER_STYLES = ("labels", "names")
YIELD_PER = 1000


class ExportRefused(Exception):
    """The export cannot start (unknown entity, malformed filter); nothing was written."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def export_entity(entity: Entity | str, records: RecordService) -> Entity:
    """The entity to export, or ``ExportRefused`` naming the closest one."""
    if isinstance(entity, Entity):
        return entity
    found = records.app.entities.get(entity)
    if found is None:
        hint = did_you_mean(entity, list(records.app.entities))
        raise ExportRefused(f"there is no entity '{entity}'" + (f" ({hint})" if hint else ""))
    if found.is_child:
        raise ExportRefused(f"{found.name} holds child rows of another entity; export the parent entity")
    return found


def export_statement(records: RecordService, entity: Entity, actor: Actor, where: str | None = None) -> tuple[sa.Select[Any], list[Field]]:
    """The SELECT of an export (one column per exported field; links as title and id)
    limited by the policy's row filter and the ``where`` expression, and its fields."""
    policy = records.policy
    policy.authorize("read", entity.name, actor, None, None)
    policy.authorize("export", entity.name, actor, None, None)
    table = records.tables[entity.name]
    hidden = policy.hidden_fields(entity.name, actor)
    fields = [f for f in exported_fields(entity) if f.name not in hidden]
    columns: list[sa.ColumnElement[Any]] = []
    source: sa.FromClause = table
    for index, fld in enumerate(fields):
        columns.append(table.c[fld.name].label(f"v{index}"))
        key = _shown_title(records, fld, actor)
        if key is None:
            columns.append(sa.null().label(f"t{index}"))
            continue
        target = records.tables[fld.to or ""].alias(f"link_{index}")
        # a linked record the actor may not read shows as its id, not its title
        joined = [target.c.id == table.c[fld.name]]
        target_rows = policy.row_filter(fld.to or "", actor, target, "read")
        if target_rows is not None:
            joined.append(target_rows)
        source = source.outerjoin(target, sa.and_(*joined))
        columns.append(target.c[key].label(f"t{index}"))
    statement = sa.select(*columns).select_from(source).order_by(table.c.id)
    for action in ("read", "export"):
        limit = policy.row_filter(entity.name, actor, table, action)
        if limit is not None:
            statement = statement.where(limit)
    if where:
        statement = statement.where(_condition(records, entity, actor, where))
    return statement, fields


def _shown_title(records: RecordService, fld: Field, actor: Actor) -> str | None:
    """The title field a link column shows, None when it shows ids (no title field, or
    one hidden from the actor)."""
    if fld.type != "link" or not fld.to:
        return None
    key = naming_field(records.app.entity(fld.to))
    if key is None or key in records.policy.hidden_fields(fld.to, actor):
        return None
    return key


def _condition(records: RecordService, entity: Entity, actor: Actor, text: str) -> sa.ColumnElement[bool]:
    try:
        expression = parse(text)
        check(expression, FieldScope(records.app.entities, entity.name), "boolean")
        # a filter on a hidden field would tell its values by the rows it keeps
        records.check_hidden(entity.name, actor, RecordQuery(expression=text))
        context = EvalContext(user=actor.as_expression_user(), now=records.clock())
        return compile_sql(expression, SqlScope(records.app.entities, records.tables, entity.name, context))
    except ExpressionError as error:
        raise ExportRefused(f"filter: {error}", "filter") from None
    except RecordInvalid as invalid:
        raise ExportRefused("filter: " + "; ".join(e.message for e in invalid.errors), "filter") from None


def export_rows(
    records: RecordService,
    entity: Entity | str,
    actor: Actor,
    headers: str = "labels",
    where: str | None = None,
    locale: str | None = None,
) -> Iterator[list[Any]]:
    """The header row, then the cells of every record of ``entity`` the actor may export
    (those matching the expression ``where``), in id order, read with a streaming cursor.

    Everything that can refuse the export (unknown entity, permission, a malformed
    filter) is checked before this returns, so a caller can start a response after it."""
    ent = export_entity(entity, records)
    if headers not in HEADER_STYLES:
        raise ExportRefused(f"headers must be one of: {', '.join(HEADER_STYLES)}", "headers")
    statement, fields = export_statement(records, ent, actor, where)
    header = [header_of(f, locale or records.app.default_locale, headers) for f in fields]

    def rows() -> Iterator[list[Any]]:
        yield header
        with records.engine.connect() as conn:
            for row in conn.execute(statement.execution_options(yield_per=YIELD_PER)):
                yield [_cell(row, fld, index) for index, fld in enumerate(fields)]

    return rows()


def export_records(
    records: RecordService,
    entity: Entity | str,
    actor: Actor,
    writer: TableWriter,
    headers: str = "labels",
    where: str | None = None,
    locale: str | None = None,
) -> int:
    """Write ``export_rows`` to ``writer`` (without closing it); return how many records.
    Raises ``ExportRefused`` or ``PermissionDenied`` before writing anything."""
    rows = export_rows(records, entity, actor, headers, where, locale)
    writer.write(next(rows))
    count = 0
    for cells in rows:
        writer.write(cells)
        count += 1
    return count


def _cell(row: sa.Row[Any], fld: Field, index: int) -> Any:
    """A field's value as a cell: a link as the target's title when it has one (else its
    id), times in UTC, JSON data as JSON text."""
    mapping = row._mapping
    title = mapping[f"t{index}"]
    value = title if title is not None else mapping[f"v{index}"]
    if isinstance(value, datetime):
        return to_utc(value)
    if fld.type == "json" and value is not None and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return value
