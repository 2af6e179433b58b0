"""Compile an expression into a SQLAlchemy clause over the entity's table.

Link paths become correlated scalar subqueries on the target table, aggregates
over a table field correlated subqueries on the child table, and every value
from outside the metadata ($user, $params, the clock, literals) a bound
parameter. The answers match ``compile_python`` row for row (see its module
docstring for the None rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from formwork.expressions import sql_dialect
from formwork.expressions.checker import Analysis, analyse
from formwork.expressions.nodes import (
    Arithmetic,
    BoolOp,
    Call,
    Compare,
    Conditional,
    Expression,
    FieldPath,
    In,
    IsNone,
    ListLiteral,
    Literal,
    Negate,
    Node,
    Not,
    VariablePath,
)
from formwork.expressions.python import EvalContext
from formwork.expressions.scope import FieldScope, Step
from formwork.expressions.values import DateRange, as_daterange, as_utc, link_id

if TYPE_CHECKING:  # the metadata package imports this one; only types are needed from it
    from formwork.metadata.model import Entity

_SQL_TYPES: dict[str, Any] = {
    "string": sa.String,
    "integer": sa.Integer,
    "decimal": sa.Numeric,
    "boolean": sa.Boolean,
    "date": sa.Date,
    "datetime": sa.DateTime,
}
_AGGREGATE_SQL = {"sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min, "max": sa.func.max}


@dataclass(frozen=True)
class SqlScope:
    """Where a compiled clause runs: the entity, its tables and the evaluation context.

    ``tables`` maps entity names to their ``sa.Table`` (or an alias of it);
    ``context`` supplies $user, $params and the clock as bound values.
    ``variables`` gives the $parameter types; when omitted they are read off
    the parameter values in ``context.params``.
    """

    entities: Mapping[str, Entity]
    tables: Mapping[str, sa.FromClause]
    entity: str
    context: EvalContext
    variables: Mapping[str, str] | None = None


def compile_sql(expr: Expression, scope: SqlScope) -> ColumnElement[Any]:
    """A SQLAlchemy column expression computing ``expr`` for each row of the entity's table.

    Use it in ``select(table).where(...)`` for conditions, or as a selected
    column; aggregates of the report's rows (``sum(amount)``) suit a grouped
    select. Raises ``ExpressionError`` when the expression does not check.
    """
    variables = scope.variables if scope.variables is not None else _variable_types(scope.context.params)
    field_scope = FieldScope(scope.entities, scope.entity, variables)
    analysis = analyse(expr, field_scope, "any")
    return _SqlCompiler(scope, field_scope, analysis).node(expr.root, _Frame(scope.tables[scope.entity]))


def _variable_types(params: Mapping[str, Any]) -> dict[str, str]:
    """Parameter types read off their values (a 2-tuple, DateRange or {start, end} is a date range)."""
    return {name: _value_type(value) for name, value in params.items()}


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, Decimal | float):
        return "decimal"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, str):
        return "string"
    if isinstance(value, DateRange | tuple) or (isinstance(value, Mapping) and "start" in value):
        return "daterange"
    if isinstance(value, list):
        element = next((_value_type(v) for v in value if v is not None), "any")
        return f"list:{element}"
    return "any"


def _wall(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A timestamp with time zone as UTC wall-clock time, before taking its day or year."""
    if isinstance(value.type, sa.DateTime) and value.type.timezone:
        return sql_dialect.UtcWallTime(value)
    return value


@dataclass(frozen=True)
class _Frame:
    """The row a path starts from: the entity's table, or a child row inside an aggregate."""

    table: sa.FromClause
    bound: tuple[tuple[tuple[str, ...], sa.FromClause], ...] = ()

    def bind(self, path: tuple[str, ...], alias: sa.FromClause) -> _Frame:
        return _Frame(self.table, (*self.bound, (path, alias)))


class _SqlCompiler:
    def __init__(self, scope: SqlScope, field_scope: FieldScope, analysis: Analysis):
        self.scope = scope
        self.field_scope = field_scope
        self.analysis = analysis
        self.ctx = scope.context

    def node(self, node: Node, frame: _Frame) -> ColumnElement[Any]:
        return getattr(self, "_" + type(node).__name__)(node, frame)

    def bound(self, value: Any, type_name: str) -> ColumnElement[Any]:
        """A bound parameter: values from outside the metadata never become SQL text."""
        sql_type = _SQL_TYPES.get(type_name)
        if type_name.startswith("link:"):
            value, sql_type = link_id(value), sa.Integer
        if value is None:
            # a typed NULL: comparing with it is unknown, as in Python (a bare null() would turn
            # `x == $user` into `x IS NULL` for an anonymous user; PostgreSQL needs the type)
            return sa.cast(sa.null(), (sql_type or sa.String)())
        if type_name == "date" and isinstance(value, str):
            value = date.fromisoformat(value)
        if type_name == "datetime":
            # stored datetimes are timestamps with time zone; a naive one is taken as UTC
            return sa.literal(as_utc(value), sa.DateTime(timezone=True))
        return sa.literal(value, sql_type() if sql_type else None)

    def _Literal(self, node: Literal, frame: _Frame) -> ColumnElement[Any]:
        if node in self.analysis.dates:
            value = self.analysis.dates[node]
            return self.bound(value, "datetime" if isinstance(value, datetime) else "date")
        if isinstance(node.value, bool):
            return sa.true() if node.value else sa.false()
        return self.bound(node.value, self.analysis.type_of(node))

    def table(self, entity: str) -> sa.FromClause:
        """A fresh alias of the entity's table, so self links (department.parent) stay apart."""
        return self.scope.tables[entity].alias()

    def follow(
        self, value: ColumnElement[Any], steps: list[Step], parts: tuple[str, ...]
    ) -> ColumnElement[Any]:
        """Read ``parts`` starting from the record whose id is ``value`` (the entity of steps[0])."""
        for step in steps:
            if step.name == "id":
                continue
            target = self.table(step.entity)
            value = (
                sa.select(target.c[step.name])
                .where(target.c.id == value)
                .correlate_except(target)
                .scalar_subquery()
            )
        return value

    def path(self, parts: tuple[str, ...], steps: list[Step], frame: _Frame) -> ColumnElement[Any]:
        table, offset = frame.table, 0
        for prefix, alias in reversed(frame.bound):
            if parts[: len(prefix)] == prefix:
                table, offset = alias, len(prefix)
                break
        value = table.c[parts[offset]]
        return self.follow(value, steps[offset + 1 :], parts[offset + 1 :])

    def _FieldPath(self, node: FieldPath, frame: _Frame) -> ColumnElement[Any]:
        return self.path(node.parts, self.analysis.paths[node], frame)

    def _VariablePath(self, node: VariablePath, frame: _Frame) -> ColumnElement[Any]:
        type_name = self.analysis.type_of(node)
        if node.name == "today":
            return self.bound(self.ctx.now.date(), "date")
        if node.name == "now":
            return self.bound(self.ctx.now, "datetime")
        value: Any = self.ctx.user if node.name == "user" else self.ctx.params.get(node.name)
        steps = self.analysis.paths.get(node) or []
        # Follow the path through records given as dicts; from the first plain id on, the database.
        for i, part in enumerate(node.parts):
            if value is None:
                return self.bound(None, type_name)
            if not isinstance(value, Mapping):
                start = self.bound(value, "link:")
                return self.follow(start, steps[i:], node.parts[i:])
            value = value.get(part)
        if type_name == "daterange" or type_name.startswith("list:"):
            raise AssertionError("date ranges and lists are compiled by `in`")
        return self.bound(value, type_name)

    def day_aware(self, node: Node, other: Node, frame: _Frame) -> ColumnElement[Any]:
        """``node`` compiled; as its day when it is a datetime and ``other`` a date."""
        value = self.node(node, frame)
        if self.kind(node) == "datetime" and self.kind(other) == "date":
            return sql_dialect.DayOf(_wall(value))
        return value

    def kind(self, node: Node) -> str:
        if node in self.analysis.dates:
            return "datetime" if isinstance(self.analysis.dates[node], datetime) else "date"
        return self.analysis.type_of(node)

    def _Compare(self, node: Compare, frame: _Frame) -> ColumnElement[Any]:
        left = self.day_aware(node.left, node.right, frame)
        right = self.day_aware(node.right, node.left, frame)
        return {
            "==": lambda: left == right,
            "!=": lambda: left != right,
            "<": lambda: left < right,
            "<=": lambda: left <= right,
            ">": lambda: left > right,
            ">=": lambda: left >= right,
        }[node.op]()

    def _IsNone(self, node: IsNone, frame: _Frame) -> ColumnElement[Any]:
        value = self.node(node.operand, frame)
        return value.is_not(None) if node.negated else value.is_(None)

    def _In(self, node: In, frame: _Frame) -> ColumnElement[Any]:
        clause = self.contained(node, frame)
        return sa.not_(clause) if node.negated else clause

    def contained(self, node: In, frame: _Frame) -> ColumnElement[Any]:
        item = self.node(node.item, frame)
        container = node.container
        if node in self.analysis.aggregates:
            table = self.analysis.aggregates[node]
            assert table is not None
            alias, owner = self.child_rows(table, frame)
            values = self.node(container, frame.bind(table, alias))
            return item.in_(sa.select(values).where(owner).correlate_except(alias))
        if isinstance(container, ListLiteral):
            values = [self.analysis.dates.get(i, i.value) for i in container.items]
        else:
            assert isinstance(container, VariablePath)
            found = self.ctx.params.get(container.name)
            if self.analysis.type_of(container) == "daterange" or not isinstance(found, list | None):
                return self.in_range(node.item, item, found)
            values = list(found or [])
        if not values:
            return sa.false()
        if self.kind(node.item) == "datetime" and any(type(v) is date for v in values):
            item = sql_dialect.DayOf(_wall(item))
            values = [v.date() if isinstance(v, datetime) else v for v in values]
        return item.in_([link_id(v) for v in values])

    def in_range(self, node: Node, item: ColumnElement[Any], value: Any) -> ColumnElement[Any]:
        period = as_daterange(value)
        if period is None:
            return sa.null()
        if period.start is None and period.end is None:
            return sa.case((item.is_not(None), sa.true()))
        conditions = []
        if self.kind(node) == "datetime":
            # compare with timestamps so an index on the column can serve the range
            if period.start is not None:
                conditions.append(
                    item >= self.bound(datetime.combine(period.start, time.min, UTC), "datetime")
                )
            if period.end is not None:
                end = datetime.combine(period.end + timedelta(days=1), time.min, UTC)
                conditions.append(item < self.bound(end, "datetime"))
        else:
            if period.start is not None:
                conditions.append(item >= self.bound(period.start, "date"))
            if period.end is not None:
                conditions.append(item <= self.bound(period.end, "date"))
        return sa.and_(*conditions)

    def child_rows(self, table: tuple[str, ...], frame: _Frame) -> tuple[sa.FromClause, ColumnElement[Any]]:
        """An alias of the child table of table path ``table`` and the condition tying it to its owner."""
        steps = self.field_scope.resolve(table, 0)
        child = steps[-1].field.entity or ""
        alias = self.table(child)
        if len(table) == 1:
            owner = frame.table.c.id
        else:
            owner = self.path(table[:-1], steps[:-1], frame)
        condition = sa.and_(
            alias.c.parent_id == owner, alias.c.parent_field == self.bound(table[-1], "string")
        )
        return alias, condition

    def _BoolOp(self, node: BoolOp, frame: _Frame) -> ColumnElement[Any]:
        operands = [self.node(o, frame) for o in node.operands]
        return sa.and_(*operands) if node.op == "and" else sa.or_(*operands)

    def _Not(self, node: Not, frame: _Frame) -> ColumnElement[Any]:
        return sa.not_(self.node(node.operand, frame))

    def _Arithmetic(self, node: Arithmetic, frame: _Frame) -> ColumnElement[Any]:
        left, right = self.node(node.left, frame), self.node(node.right, frame)
        kinds = (self.kind(node.left), self.kind(node.right))
        if "date" in kinds:
            if kinds[0] != "date":
                left, right = right, left
            return sql_dialect.AddDays(left, -right if node.op == "-" else right)
        if node.op == "+" and "string" in kinds:
            return left.concat(right)
        if node.op == "/":
            return sql_dialect.Divide(left, right)
        if node.op == "%":
            return left % sa.func.nullif(right, 0)
        return {"+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right}[node.op]()

    def _Negate(self, node: Negate, frame: _Frame) -> ColumnElement[Any]:
        return -self.node(node.operand, frame)

    def _Conditional(self, node: Conditional, frame: _Frame) -> ColumnElement[Any]:
        return sa.case(
            (self.node(node.test, frame), self.node(node.then, frame)),
            else_=self.node(node.otherwise, frame),
        )

    def _Call(self, node: Call, frame: _Frame) -> ColumnElement[Any]:
        name = node.function
        if node in self.analysis.aggregates:
            return self.aggregate(node, frame)
        if name == "today":
            return self.bound(self.ctx.now.date(), "date")
        if name == "now":
            return self.bound(self.ctx.now, "datetime")
        if name == "date":
            return self.bound(self.analysis.dates[node.args[0]], "date")
        if name == "round":
            return self.rounded(node, frame)
        if name == "len" and isinstance(node.args[0], VariablePath):
            found = self.ctx.params.get(node.args[0].name)
            return self.bound(None if found is None else len(found), "integer")
        args = [self.node(a, frame) for a in node.args]
        if name in ("year", "month", "day"):
            return sa.cast(sa.extract(name, _wall(args[0])), sa.Integer)
        if name == "contains":
            return sql_dialect.ContainsText(*args)
        if name == "startswith":
            text, prefix = args
            return sa.func.substr(text, 1, sa.func.length(prefix)) == prefix
        if name == "days_between":
            return sql_dialect.DaysBetween(*(_wall(a) for a in args))
        if name == "len":
            return sa.func.length(args[0])
        if name in ("lower", "upper"):
            return getattr(sa.func, name)(args[0], type_=sa.String())
        return getattr(sa.func, name)(*args)  # abs, coalesce

    def rounded(self, node: Call, frame: _Frame) -> ColumnElement[Any]:
        value = self.node(node.args[0], frame)
        if self.analysis.type_of(node.args[0]) == "integer":
            return value
        if len(node.args) == 1:
            return sa.cast(sa.func.round(sa.cast(value, sa.Numeric())), sa.Integer())
        digits = node.args[1].value  # type: ignore[attr-defined]
        return sa.func.round(sa.cast(value, sa.Numeric()), digits, type_=sa.Numeric())

    def aggregate(self, node: Call, frame: _Frame) -> ColumnElement[Any]:
        """An aggregate over the report's rows, or a correlated subquery over child rows."""
        table = self.analysis.aggregates[node]
        arg = node.args[0] if node.args else None
        counts_rows = arg is None or self.analysis.type_of(arg).startswith("rows:") or node.function == "len"
        if table is None:
            return sa.func.count() if arg is None else self.reduce(node.function, self.node(arg, frame))
        alias, owner = self.child_rows(table, frame)
        if counts_rows:
            value = sa.func.count()
        else:
            value = self.reduce(node.function, self.node(arg, frame.bind(table, alias)), inner=True)
        result = sa.select(value).where(owner).correlate_except(alias).scalar_subquery()
        return sa.func.coalesce(result, 0) if node.function == "sum" else result

    @staticmethod
    def reduce(function: str, value: ColumnElement[Any], inner: bool = False) -> ColumnElement[Any]:
        if function == "count":
            return sa.func.count(value)
        reduced = _AGGREGATE_SQL[function](value)
        # sum of no rows is 0, as in Python; child sums get their COALESCE around the subquery
        return sa.func.coalesce(reduced, 0) if function == "sum" and not inner else reduced
