"""Compile an expression into a Python callable over a record dict.

Semantics follow SQL so that the same expression gives the same answer in
Python and in the database: an unknown value (None) makes comparisons and
arithmetic unknown, ``and``/``or``/``not`` use three-valued logic, aggregates
skip None (``sum`` of nothing is 0), and a condition that ends up unknown is
False. Numbers with a fraction are ``Decimal``; ``/`` never truncates.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from formwork.expressions.checker import Analysis, analyse
from formwork.expressions.functions import FUNCTIONS
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
from formwork.expressions.scope import FieldScope
from formwork.expressions.values import as_daterange, link_id, utc_wall_time

Record = Mapping[str, Any]
Lookup = Callable[[str, Any], Mapping[str, Any] | None]
Compiled = Callable[[Record, "EvalContext"], Any]

_CONDITIONS = (Compare, IsNone, In, BoolOp, Not)
_COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# Link fields every entity has, so their target is known even without a scope.
_SYSTEM_LINKS = {"created_by": "user", "updated_by": "user"}
_USER_LINKS = {**_SYSTEM_LINKS, "department": "department", "manager": "user"}


@dataclass(frozen=True)
class EvalContext:
    """What an expression may see besides the record.

    ``user`` is the current user's record (``$user``), ``now`` the clock
    (``now()``, ``today()``), ``params`` the values of ``$params``.
    ``lookup(entity, id)`` returns a linked record when a path follows a link
    whose value is an id rather than a dict. ``rows`` are the report rows a
    measure aggregates (only for measures evaluated in Python).
    """

    user: Mapping[str, Any] | None
    now: datetime
    params: Mapping[str, Any] = field(default_factory=dict)
    lookup: Lookup | None = None
    rows: Sequence[Record] | None = None


@dataclass(frozen=True)
class _Env:
    record: Record
    ctx: EvalContext
    # table path -> the child row being looked at inside an aggregate
    rows: tuple[tuple[tuple[str, ...], Record], ...] = ()

    def bind(self, table: tuple[str, ...], row: Record) -> _Env:
        return _Env(self.record, self.ctx, (*self.rows, (table, row)))


def compile_python(expr: Expression, scope: FieldScope | None = None) -> Compiled:
    """A function ``(record, ctx) -> value`` evaluating ``expr``.

    With ``scope`` the expression is type checked first (raising
    ``ExpressionError``) and link targets come from the metadata, so
    ``ctx.lookup`` gets the right entity name; without it, following a link
    whose value is an id (not a dict) raises ``ValueError``.
    """
    analysis = analyse(expr, scope, "measure" if scope.aggregate else "row") if scope else None
    body = _Compiler(analysis, scope).node(expr.root)
    if isinstance(expr.root, _CONDITIONS) or (
        isinstance(expr.root, Call) and expr.root.function in ("contains", "startswith")
    ):

        def condition(record: Record, ctx: EvalContext) -> bool:
            return body(_Env(record, ctx)) is True

        return condition

    def evaluate(record: Record, ctx: EvalContext) -> Any:
        return body(_Env(record, ctx))

    return evaluate


Fn = Callable[[_Env], Any]


class _Compiler:
    def __init__(self, analysis: Analysis | None, scope: FieldScope | None):
        self.analysis = analysis
        self.scope = scope

    def node(self, node: Node) -> Fn:
        return getattr(self, "_" + type(node).__name__)(node)

    def _Literal(self, node: Literal) -> Fn:
        value = node.value
        return lambda env: value

    def _ListLiteral(self, node: ListLiteral) -> Fn:
        values = [item.value for item in node.items]
        return lambda env: values

    def link_targets(self, node: FieldPath | VariablePath) -> list[str | None]:
        """The entity each segment of the path points into, where known."""
        if self.analysis is not None and node in self.analysis.paths:
            return [s.field.to or s.field.entity for s in self.analysis.paths[node]]
        known = _USER_LINKS if isinstance(node, VariablePath) and node.name == "user" else _SYSTEM_LINKS
        return [known.get(part) for part in node.parts]

    def _FieldPath(self, node: FieldPath) -> Fn:
        parts = node.parts
        targets = self.link_targets(node)

        def read(env: _Env) -> Any:
            start, offset = env.record, 0
            for table, row in reversed(env.rows):
                if parts[: len(table)] == table:
                    start, offset = row, len(table)
                    break
            return _walk(start, parts, offset, targets, env.ctx, node)

        return read

    def _VariablePath(self, node: VariablePath) -> Fn:
        name, parts = node.name, node.parts
        targets = self.link_targets(node)
        entity: str | None = "user" if name == "user" else None
        if self.analysis is not None and self.analysis.paths.get(node):
            entity = self.analysis.paths[node][0].entity

        def read(env: _Env) -> Any:
            ctx = env.ctx
            if name == "today":
                return ctx.now.date()
            if name == "now":
                return ctx.now
            value = ctx.user if name == "user" else ctx.params.get(name)
            if not parts:
                return value["id"] if isinstance(value, Mapping) and "id" in value else value
            if value is None:
                return None
            row = value if isinstance(value, Mapping) else _lookup(ctx, entity, value, node)
            return None if row is None else _walk(row, parts, 0, targets, ctx, node)

        return read

    def _Compare(self, node: Compare) -> Fn:
        left, right, op = self.node(node.left), self.node(node.right), _COMPARISONS[node.op]
        return lambda env: _compare(op, left(env), right(env))

    def _IsNone(self, node: IsNone) -> Fn:
        operand, negated = self.node(node.operand), node.negated
        return lambda env: (operand(env) is None) != negated

    def _In(self, node: In) -> Fn:
        item, negated = self.node(node.item), node.negated
        over_rows = (
            node in self.analysis.aggregates
            if self.analysis is not None
            else isinstance(node.container, FieldPath)
        )
        if over_rows:
            values = self.over_rows(node, node.container, report_rows=False)
            return lambda env: _negate(_sql_in(item(env), values(env)), negated)
        container = self.node(node.container)

        def contained(env: _Env) -> Any:
            found = container(env)
            if isinstance(found, list) or isinstance(node.container, ListLiteral):
                return _negate(_sql_in(item(env), found), negated)
            return _negate(_in_range(item(env), found), negated)

        return contained

    def over_rows(
        self, node: Node, arg: Node | None, report_rows: bool = True
    ) -> Callable[[_Env], list[Any]]:
        """A function giving ``arg`` evaluated once per row the aggregate ``node`` runs over.

        The rows are the child rows of a table path, or the report rows (``ctx.rows``).
        Without a scope the table is the first path prefix whose value is a list.
        """
        each = self.node(arg) if arg is not None else None
        known = self.analysis.aggregates.get(node, False) if self.analysis is not None else False
        paths = [n for n in arg.walk() if isinstance(n, FieldPath)] if arg is not None else []
        whole = isinstance(arg, FieldPath)

        def targets(table: tuple[str, ...]) -> list[str | None]:
            if self.scope is not None:
                return [s.field.to for s in self.scope.resolve(table, node.column)]
            return self.link_targets(FieldPath(node.column, table))

        def values(env: _Env) -> list[Any]:
            table = known if known is not False else _find_table(paths, env)
            if table is None:
                rows = env.ctx.rows if report_rows and env.ctx.rows is not None else ()
                return [1 if each is None else each(_Env(row, env.ctx)) for row in rows]
            rows = _rows_at(env, table, targets(table))
            if each is None or (whole and arg.parts == table):  # type: ignore[union-attr]
                return [1] * len(rows)
            return [each(env.bind(table, row)) for row in rows]

        return values

    def _BoolOp(self, node: BoolOp) -> Fn:
        operands = [self.node(o) for o in node.operands]
        stop = node.op == "or"  # the value that decides: True for or, False for and

        def combine(env: _Env) -> bool | None:
            unknown = False
            for operand in operands:
                value = operand(env)
                if value is None:
                    unknown = True
                elif bool(value) is stop:
                    return stop
            return None if unknown else not stop

        return combine

    def _Not(self, node: Not) -> Fn:
        operand = self.node(node.operand)
        return lambda env: _negate(operand(env), True)

    def _Arithmetic(self, node: Arithmetic) -> Fn:
        left, right, op = self.node(node.left), self.node(node.right), node.op
        return lambda env: _arithmetic(op, left(env), right(env))

    def _Negate(self, node: Negate) -> Fn:
        operand = self.node(node.operand)

        def negate(env: _Env) -> Any:
            value = _number(operand(env))
            return None if value is None else -value

        return negate

    def _Conditional(self, node: Conditional) -> Fn:
        test, then, otherwise = self.node(node.test), self.node(node.then), self.node(node.otherwise)
        return lambda env: then(env) if test(env) is True else otherwise(env)

    def _Call(self, node: Call) -> Fn:
        name = node.function
        arg = node.args[0] if node.args else None
        if FUNCTIONS[name].aggregate:
            values = self.over_rows(node, arg)
            reduce = _AGGREGATES[name if arg is not None else "len"]
            return lambda env: reduce(values(env))
        if name == "len":
            return self.length(node, arg)
        if name == "date":
            value = date.fromisoformat(node.args[0].value)  # type: ignore[attr-defined]
            return lambda env: value
        if name == "today":
            return lambda env: env.ctx.now.date()
        if name == "now":
            return lambda env: env.ctx.now
        args = [self.node(a) for a in node.args]
        function = _FUNCTIONS[name]
        return lambda env: function(*(a(env) for a in args))

    def length(self, node: Call, arg: Node | None) -> Fn:
        """len(): the number of child rows for a table path, else the length of text or a list."""
        rows = self.over_rows(node, arg, report_rows=False)
        plain = self.node(arg) if arg is not None else (lambda env: None)
        if self.analysis is not None:
            if node in self.analysis.aggregates:
                return lambda env: len(rows(env))
            return lambda env: _FUNCTIONS["len"](plain(env))
        paths = [arg] if isinstance(arg, FieldPath) else []

        def length(env: _Env) -> Any:
            if _find_table(paths, env) is not None:
                return len(rows(env))
            return _FUNCTIONS["len"](plain(env))

        return length


def _find_table(paths: list[FieldPath], env: _Env) -> tuple[str, ...] | None:
    """Without a scope: the first path prefix whose value is a list of rows."""
    for path in paths:
        current: Any = env.record
        for i, part in enumerate(path.parts):
            current = current.get(part) if isinstance(current, Mapping) else None
            if isinstance(current, list | tuple):
                return path.parts[: i + 1]
    return None


def _rows_at(env: _Env, table: tuple[str, ...], targets: list[str | None]) -> list[Record]:
    current: Any = env.record
    for i, part in enumerate(table):
        if isinstance(current, Mapping):
            current = current.get(part)
        else:
            return []
        if current is None:
            return []
        if i < len(table) - 1 and not isinstance(current, Mapping):
            current = _lookup(env.ctx, targets[i], current, None)
    return list(current) if isinstance(current, list | tuple) else []


def _walk(
    start: Any,
    parts: tuple[str, ...],
    offset: int,
    targets: list[str | None],
    ctx: EvalContext,
    node: Node | None,
) -> Any:
    current = start
    for i in range(offset, len(parts)):
        if current is None:
            return None
        if not isinstance(current, Mapping):
            current = _lookup(ctx, targets[i - 1], current, node)
            if current is None:
                return None
        current = current.get(parts[i])
    return current if isinstance(current, list | tuple) else link_id(current)


def _lookup(ctx: EvalContext, entity: str | None, key: Any, node: Node | None) -> Mapping[str, Any] | None:
    if ctx.lookup is None or entity is None or isinstance(key, list | tuple):
        what = f" for '{node.dotted}'" if isinstance(node, FieldPath | VariablePath) else ""
        raise ValueError(
            f"cannot follow a link{what} given as an id: pass linked records as dicts, "
            "or give compile_python a scope and the context a lookup"
        )
    return ctx.lookup(entity, key)


def _negate(value: Any, negated: bool) -> Any:
    if value is None or not negated:
        return value
    return not value


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    """Both sides made comparable: links as ids, ISO text as dates, a datetime next to a date as its day."""
    a, b = _utc(link_id(a)), _utc(link_id(b))
    if isinstance(a, date) and isinstance(b, str):
        b = _iso(b)
    elif isinstance(b, date) and isinstance(a, str):
        a = _iso(a)
    if isinstance(a, date) and isinstance(b, date) and isinstance(a, datetime) != isinstance(b, datetime):
        a = a.date() if isinstance(a, datetime) else a
        b = b.date() if isinstance(b, datetime) else b
    return _number(a), _number(b)


def _utc(value: Any) -> Any:
    return utc_wall_time(value) if isinstance(value, datetime) else value


def _iso(text: str) -> date | None:
    """A plain day ('2024-01-31') as a date, a timestamp as a datetime, anything else None."""
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return _utc(parse(text))
        except ValueError:
            continue
    return None


def _compare(op: Callable[[Any, Any], bool], a: Any, b: Any) -> bool | None:
    a, b = _comparable(a, b)
    if a is None or b is None:
        return None
    try:
        return bool(op(a, b))
    except TypeError:
        return None


def _sql_in(item: Any, values: Sequence[Any]) -> bool | None:
    """``item IN (values)`` as SQL answers it, None values and all."""
    if not values:
        return False
    if item is None:
        return None
    unknown = False
    for value in values:
        a, b = _comparable(item, value)
        if a is None or b is None:
            unknown = True
        elif a == b:
            return True
    return None if unknown else False


def _in_range(item: Any, value: Any) -> bool | None:
    period = as_daterange(value)
    if item is None or period is None:
        return None
    day = _day_of(item) if isinstance(item, date) else item
    if isinstance(day, str):
        day = _iso(day)
    if not isinstance(day, date):
        return None
    return (period.start is None or period.start <= day) and (period.end is None or day <= period.end)


def _arithmetic(op: str, a: Any, b: Any) -> Any:
    a, b = _number(a), _number(b)
    if a is None or b is None:
        return None
    if isinstance(a, date) or isinstance(b, date):
        return _date_arithmetic(op, a, b)
    if isinstance(a, str) or isinstance(b, str):
        return a + b if op == "+" and isinstance(a, str) and isinstance(b, str) else None
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            return None  # like SQL's NULLIF(b, 0): dividing by zero gives no value
        if op == "/":
            return Decimal(a) / Decimal(b)
        return _remainder(a, b)
    except (TypeError, InvalidOperation):
        return None


def _remainder(a: Any, b: Any) -> Any:
    """``a % b`` with the sign of ``a``, as SQL computes it."""
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a) % Decimal(b)
    result = abs(a) % abs(b)
    return -result if a < 0 else result


def _date_arithmetic(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, date) and isinstance(b, int) and op in "+-":
        return a + timedelta(days=b if op == "+" else -b)
    if isinstance(b, date) and isinstance(a, int) and op == "+":
        return b + timedelta(days=a)
    return None


def _present(values: list[Any]) -> list[Any]:
    return [_number(v) for v in values if v is not None]


def _sum(values: list[Any]) -> Any:
    return sum(_present(values), 0)


def _avg(values: list[Any]) -> Any:
    present = _present(values)
    return Decimal(sum(present, 0)) / len(present) if present else None


def _min(values: list[Any]) -> Any:
    present = _present(values)
    return min(present) if present else None


def _max(values: list[Any]) -> Any:
    present = _present(values)
    return max(present) if present else None


_AGGREGATES: dict[str, Callable[[list[Any]], Any]] = {
    "sum": _sum,
    "avg": _avg,
    "min": _min,
    "max": _max,
    "count": lambda values: len(_present(values)),
    "len": len,
}


def _none_safe(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        return function(*args)

    return call


def _round(value: Any, digits: int | None = None) -> Any:
    """Half away from zero, like SQL; without ``digits`` a whole number."""
    if isinstance(value, int):
        return value
    try:
        rounded = Decimal(_number(value)).quantize(Decimal(1).scaleb(-(digits or 0)), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than Decimal's precision: already as exact as it gets
        return value
    return int(rounded) if digits is None else rounded


def _day_of(value: date) -> date:
    """The (UTC) day of a date or datetime."""
    return utc_wall_time(value).date() if isinstance(value, datetime) else value


def _length(value: Any) -> int:
    return len(value)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: _none_safe(function)
    for name, function in {
        "len": _length,
        "abs": lambda x: abs(_number(x)),
        "round": _round,
        "lower": str.lower,
        "upper": str.upper,
        "year": lambda d: _utc(d).year,
        "month": lambda d: _utc(d).month,
        "day": lambda d: _utc(d).day,
        "contains": lambda s, part: part in s,
        "startswith": lambda s, prefix: s.startswith(prefix),
        "days_between": lambda a, b: (_day_of(b) - _day_of(a)).days,
    }.items()
}
_FUNCTIONS["coalesce"] = lambda *args: next((a for a in args if a is not None), None)
