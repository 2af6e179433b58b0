"""``list`` and ``count``: filtered, sorted, paged reads for screens and the API, in SQL.

Every list of records goes through here: the screens' filters and search, the API's
``field__op=value`` conditions, ``filter=`` expressions (compiled to SQL, never evaluated
in Python), sort with an id tiebreak, limit/offset and keyset pages. The permission
policy's row filter is one more condition, added here for every caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from formwork.expressions import EvalContext, ExpressionError, FieldScope, SqlScope, check, compile_sql, parse
from formwork.metadata.model import STATUS_FIELD, App, Entity, Field
from formwork.problems import did_you_mean
from formwork.records.actor import Actor
from formwork.records.coerce import WrongType, coerce_value, is_empty
from formwork.records.errors import FieldError, RecordInvalid
from formwork.records.formulas import ActingUser
from formwork.records.query import OPERATORS, Condition, RecordQuery
from formwork.records.rows import cached, lookup_in, record_columns, record_shape

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

# Field types a search and the text operators look into.
TEXT_TYPES = ("string", "text", "email", "choice", "file")
# Field types that have no order: only equality and emptiness make sense.
UNORDERED_TYPES = ("boolean",)
# The field of errors in a ``filter=`` expression and in a keyset position.
EXPRESSION_FIELD = "filter"
AFTER_FIELD = "cursor"
BOOLEAN = Field(name="isnull", type="boolean")
# The range of the database's integer columns (ids, links, integer fields).
INTEGER_MIN = -(2**31)
INTEGER_MAX = 2**31 - 1
INTEGER_TYPES = ("integer", "link")


def _column_field(entity: Entity, name: str) -> Field | None:
    if name in entity.fields and entity.fields[name].is_stored:
        return entity.fields[name]
    if name in record_columns(entity):
        return Field(name=name, type=SYSTEM_COLUMN_TYPES[name])
    return None


def _unknown(entity: Entity, name: str, what: str) -> FieldError:
    hint = did_you_mean(name, record_columns(entity))
    if name in entity.fields:
        hint = "a table field: its rows belong to each record"
    suffix = f" ({hint})" if hint else ""
    return FieldError(name, "unknown_field", f"cannot {what} by '{name}': not a field of {entity.name}{suffix}")


class Listing:
    """One list request of ``entity`` by ``actor`` at ``now``, turned into SQL.

    ``tables`` maps entity names to tables (expressions follow links into them);
    ``limit`` is the permission policy's row filter (None: every row). Problems with the
    query are collected and raised together as ``RecordInvalid``."""

    def __init__(self, conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], entity: Entity, query: RecordQuery, limit: sa.ColumnElement[bool] | None, actor: Actor, now: datetime):
        self.conn = conn
        self.app = app
        self.tables = tables
        self.entity = entity
        self.table = tables[entity.name]
        self.query = query
        self.limit = limit
        self.actor = actor
        self.now = now
        self.errors: list[FieldError] = []

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """Every condition of the query, the row filter included."""
        found = [self._filter(name, wanted) for name, wanted in self.query.filters.items()]
        found += [self._condition(c) for c in self.query.conditions]
        if self.query.expression is not None:
            found.append(self._expression(self.query.expression))
        if self.query.search:
            found.append(self._search(self.query.search))
        if self.limit is not None:
            found.append(self.limit)
        return [c for c in found if c is not None]

    def _typed(self, fld: Field, name: str, value: Any) -> tuple[bool, Any]:
        try:
            typed = coerce_value(fld, value)
        except WrongType as wrong:
            self.errors.append(FieldError(name, "type", wrong.message))
            return False, None
        except OverflowError:
            self.errors.append(FieldError(name, "type", "is out of the range of dates and times"))
            return False, None
        if fld.type in INTEGER_TYPES and typed is not None and not INTEGER_MIN <= typed <= INTEGER_MAX:
            self.errors.append(FieldError(name, "type", f"must be a whole number from {INTEGER_MIN} to {INTEGER_MAX}"))
            return False, None
        return True, typed

    def _field(self, name: str) -> Field | None:
        fld = _column_field(self.entity, name)
        if fld is None:
            self.errors.append(_unknown(self.entity, name, "filter"))
        return fld

    def _filter(self, name: str, wanted: Any) -> sa.ColumnElement[bool] | None:
        fld = self._field(name)
        if fld is None:
            return None
        values = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
        return self._one_of(fld, name, values)

    def _one_of(self, fld: Field, name: str, values: list[Any]) -> sa.ColumnElement[bool] | None:
        typed = [self._typed(fld, name, v) for v in values]
        if not all(ok for ok, _v in typed):
            return None
        column = self.table.c[fld.name]
        present = [v for _ok, v in typed if v is not None]
        # one value: plain equality, the statement SQLAlchemy and the database handle best
        options = [column == present[0] if len(present) == 1 and fld.type != "json" else column.in_(present)] if present else []
        if len(present) < len(typed):
            options.append(column.is_(None))
        return sa.or_(*options) if len(options) > 1 else options[0] if options else sa.false()

    def _refuse(self, name: str, code: str, message: str) -> None:
        self.errors.append(FieldError(name, code, message))

    def _condition(self, cond: Condition) -> sa.ColumnElement[bool] | None:
        name, op = cond.field, cond.op
        if op not in OPERATORS:
            self._refuse(name, "operator", f"unknown operator '{op}' (use one of: {', '.join(OPERATORS)})")
            return None
        fld = self._field(name)
        if fld is None:
            return None
        column = self.table.c[fld.name]
        if op == "isnull":
            ok, empty = self._typed(BOOLEAN, name, cond.value)
            if ok and empty is None:
                self._refuse(name, "type", "isnull must be true or false")
            return None if not ok or empty is None else column.is_(None) if empty else column.is_not(None)
        if fld.type == "json":
            self._refuse(name, "operator", "a JSON field can only be filtered with isnull")
            return None
        if op == "in":
            values = cond.value if isinstance(cond.value, list | tuple) else str(cond.value).split(",")
            return self._one_of(fld, name, list(values))
        if op in ("contains", "startswith"):
            return self._text_match(fld, name, op, cond.value)
        ok, value = self._typed(fld, name, cond.value)
        if not ok:
            return None
        if op in ("eq", "ne"):
            if value is None:
                return column.is_(None) if op == "eq" else column.is_not(None)
            return column == value if op == "eq" else sa.or_(column != value, column.is_(None))
        if fld.type in UNORDERED_TYPES:
            self._refuse(name, "operator", f"a {fld.type} field has no order: use eq, ne, in or isnull")
            return None
        if value is None:
            self._refuse(name, "type", f"{op} needs a value")
            return None
        compare = {"gt": column > value, "gte": column >= value, "lt": column < value, "lte": column <= value}
        return compare[op]

    def _text_match(self, fld: Field, name: str, op: str, value: Any) -> sa.ColumnElement[bool] | None:
        if fld.type not in TEXT_TYPES:
            self._refuse(name, "operator", f"{op} applies to text fields only")
            return None
        if is_empty(value) or not isinstance(value, str):
            self._refuse(name, "type", f"{op} needs some text")
            return None
        lowered = sa.func.lower(self.table.c[fld.name])
        term = value.lower()
        if op == "contains":
            return lowered.contains(term, autoescape=True)
        return lowered.startswith(term, autoescape=True)

    def _expression(self, text: str) -> sa.ColumnElement[bool] | None:
        try:
            expr = parse(text)
            check(expr, FieldScope(self.app.entities, self.entity.name), "boolean")
            lookup = lookup_in(self.conn, self.app, self.tables)
            context = EvalContext(user=ActingUser(self.actor, lookup), now=self.now, lookup=lookup)
            return compile_sql(expr, SqlScope(self.app.entities, self.tables, self.entity.name, context))
        except ExpressionError as error:
            hint = f" — {error.hint}" if error.hint else ""
            self._refuse(EXPRESSION_FIELD, "filter", f"{error.message} (column {error.column}){hint}")
            return None

    def _search(self, text: str) -> sa.ColumnElement[bool]:
        fields = self.query.search_fields or _default_search(self.app, self.entity)
        term = text.strip().lower()
        searchable = [f for f in fields if (fld := _column_field(self.entity, f)) is not None and fld.type in TEXT_TYPES]
        matches = [sa.func.lower(self.table.c[f]).contains(term, autoescape=True) for f in searchable]
        return sa.or_(*matches) if matches else sa.false()

    def keys(self) -> list[tuple[Field, bool]]:
        """(field, descending) of each sort key, ``id`` last."""
        keys: list[tuple[Field, bool]] = []
        for key in self.query.sort:
            name = key.lstrip("-+")
            fld = _column_field(self.entity, name)
            if fld is None:
                self.errors.append(_unknown(self.entity, name, "sort"))
                continue
            if fld.type == "json":
                self._refuse(name, "sort", f"cannot sort by '{name}': a JSON field has no order")
                continue
            keys.append((fld, key.startswith("-")))
        # id last keeps pages stable when the sort keys repeat
        keys.append((Field(name="id", type="integer"), False))
        return keys

    def order(self, keys: list[tuple[Field, bool]]) -> list[sa.ColumnElement[Any]]:
        """ORDER BY terms: empty values after all others ascending, before them descending."""
        columns = [self.table.c[fld.name] for fld, _desc in keys]
        return [c.desc().nulls_first() if desc else c.asc().nulls_last() for c, (_f, desc) in zip(columns, keys, strict=True)]

    def after(self, keys: list[tuple[Field, bool]], position: tuple[Any, ...]) -> sa.ColumnElement[bool] | None:
        """The rows that come after ``position`` in the order of ``keys``."""
        if len(position) != len(keys):
            self._refuse(AFTER_FIELD, "cursor", "does not belong to this sort order")
            return None
        typed = [self._typed(fld, AFTER_FIELD, value) for (fld, _desc), value in zip(keys, position, strict=True)]
        if not all(ok for ok, _v in typed):
            return None
        clause: sa.ColumnElement[bool] | None = None
        for (fld, desc), (_ok, value) in reversed(list(zip(keys, typed, strict=True))):
            beyond, same = _beyond(self.table.c[fld.name], desc, value)
            clause = beyond if clause is None else sa.or_(beyond, sa.and_(same, clause))
        return clause

    def equalities(self) -> tuple[tuple[str, Any], ...] | None:
        """(column, typed value) of each filter when the query is nothing but equalities with
        one non-empty value each (filters, ``eq`` conditions) on columns other than JSON, else
        None: such a list runs a statement prepared once per shape with the values as
        parameters."""
        query = self.query
        if query.expression is not None or query.search or query.after is not None:
            return None
        if any(c.op != "eq" for c in query.conditions):
            return None
        found: list[tuple[str, Any]] = []
        for name, wanted in [*query.filters.items(), *((c.field, c.value) for c in query.conditions)]:
            fld = _column_field(self.entity, name)
            if fld is None or fld.type == "json" or isinstance(wanted, list | tuple | set | frozenset):
                return None
            ok, typed = self._typed(fld, name, wanted)
            if not ok or typed is None:
                return None
            found.append((fld.name, typed))
        return tuple(found)

    def raise_errors(self) -> None:
        """Raise ``RecordInvalid`` with every problem found so far."""
        if self.errors:
            raise RecordInvalid(self.errors)


def _beyond(column: sa.ColumnElement[Any], desc: bool, value: Any) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    """(comes strictly after ``value``, equals ``value``) for one sort key; empty values
    sort last ascending and first descending."""
    if value is None:
        return (column.is_not(None) if desc else sa.false()), column.is_(None)
    # a bound literal: SQLAlchemy refuses < and > against a bare True or False
    bound = sa.literal(value, column.type)
    if desc:
        return column < bound, column == bound
    return sa.or_(column > bound, column.is_(None)), column == bound


def _default_search(app: App, entity: Entity) -> tuple[str, ...]:
    form = app.form_for(entity.name)
    if form is not None and form.list.search:
        return form.list.search
    return (entity.title_field,) if entity.title_field else ()


def list_rows(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], entity: Entity, query: RecordQuery, limit: sa.ColumnElement[bool] | None, actor: Actor, now: datetime) -> list[dict[str, Any]]:
    """The matching records (without child rows), sorted and paged; ``limit`` is the
    permission policy's row filter. Raises ``RecordInvalid`` listing every problem."""
    listing = Listing(conn, app, tables, entity, query, limit, actor, now)
    table = listing.table
    shape = record_shape(table, entity)
    simple = listing.equalities()
    keys = listing.keys()
    if simple is not None and not listing.errors:
        names = tuple(name for name, _value in simple)
        statement = _prepared_for(listing, names, keys)
        params = {f"fw_{n}": value for n, (_name, value) in enumerate(simple)}
        params["fw_offset"] = max(query.offset, 0)
        if query.limit is not None:
            params["fw_limit"] = max(query.limit, 0)
        return [shape.read(row) for row in _run(conn, statement, query, params)]
    listing.errors.clear()  # the conditions below find the same problems again
    conditions = listing.conditions()
    keys = listing.keys()
    if query.after is not None:
        conditions.append(listing.after(keys, tuple(query.after)))
    listing.raise_errors()
    statement = shape.select.where(*conditions).order_by(*listing.order(keys)).offset(max(query.offset, 0))
    if query.limit is not None:
        statement = statement.limit(max(query.limit, 0))
    return [shape.read(row) for row in _run(conn, statement, query)]


def _prepared_for(listing: Listing, names: tuple[str, ...], keys: list[tuple[Field, bool]]) -> sa.Select[Any]:
    """The prepared list statement of this shape of query, built once per shape and row filter.

    The policy hands out the same row filter object for the same actor while its conditions
    stay valid, so a user with a row rule lists through one statement too; the entry keeps
    the filter object and is only used for that very object."""
    query, limit = listing.query, listing.limit
    key = ("list", names, tuple(query.sort), query.limit is not None, None if limit is None else id(limit))
    kept_limit, statement = cached(listing.table, listing.entity, key, lambda: (limit, _prepared(listing, names, keys)))
    if kept_limit is not limit:
        return _prepared(listing, names, keys)
    return statement


def _prepared(listing: Listing, names: tuple[str, ...], keys: list[tuple[Field, bool]]) -> sa.Select[Any]:
    """The list statement for equality filters on ``names`` sorted by ``keys`` within the row
    filter, its values as parameters: ``fw_0``.. for the filters, ``fw_offset`` and (if
    limited) ``fw_limit``."""
    table = listing.table
    conditions = [table.c[name] == sa.bindparam(f"fw_{n}") for n, name in enumerate(names)]
    if listing.limit is not None:
        conditions.append(listing.limit)
    statement = (
        record_shape(table, listing.entity)
        .select.where(*conditions)
        .order_by(*listing.order(keys))
        .offset(sa.bindparam("fw_offset", type_=sa.Integer()))
    )
    if listing.query.limit is not None:
        statement = statement.limit(sa.bindparam("fw_limit", type_=sa.Integer()))
    return statement


def count_rows(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], entity: Entity, query: RecordQuery, limit: sa.ColumnElement[bool] | None, actor: Actor, now: datetime) -> int:
    """How many records match the filters, conditions, expression and search (sort, paging
    and the keyset position are ignored)."""
    listing = Listing(conn, app, tables, entity, query, limit, actor, now)
    conditions = listing.conditions()
    listing.raise_errors()
    statement = sa.select(sa.func.count()).select_from(listing.table).where(*conditions)
    return int(_run(conn, statement, query).scalar_one())


def _run(conn: sa.Connection, statement: sa.Executable, query: RecordQuery, params: Mapping[str, Any] | None = None) -> sa.CursorResult[Any]:
    """Execute a list statement. Filter values are checked before, so a value the database
    cannot compute comes from the expression (``1e30 * amount``): a refused query, not a crash."""
    try:
        return conn.execute(statement, params)
    except (sa.exc.DataError, OverflowError):
        field = EXPRESSION_FIELD if query.expression else ""
        message = "cannot be computed by the database: a number or date in it is out of range"
        raise RecordInvalid([FieldError(field, "filter", message)]) from None


def keyset_of(record: Mapping[str, Any], sort: tuple[str, ...]) -> tuple[Any, ...]:
    """The keyset position of ``record`` under ``sort``: ``RecordQuery.after`` for the page
    that follows it."""
    return (*(record[key.lstrip("-+")] for key in sort), record["id"])
