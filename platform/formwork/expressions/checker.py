"""Type checking: resolve every field path and $variable, give every node a type, refuse misfits.

Types are names: "string", "integer", "decimal", "boolean", "date", "datetime",
"daterange", "link:<entity>", "rows:<entity>" (a table field itself),
"list:<type>", "null" (the literal None) and "any" (a value whose type is not
known, e.g. a parameter given as None).

Besides a type, each value has a *level*: ``None`` for one value per record, a
tuple naming a table path (``("lines",)``) for one value per child row, and
``()`` for one value per report row inside a measure. Aggregates turn row
levels back into one value; what is left at the top must be one value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING
from typing import Literal as TypingLiteral

from formwork.expressions.errors import (
    BAD_ARGUMENTS,
    ROWS_MISUSE,
    TYPE_MISMATCH,
    UNKNOWN_FIELD,
    UNKNOWN_VARIABLE,
    WRONG_RESULT,
    ExpressionError,
)
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
from formwork.expressions.parser import parse
from formwork.expressions.scope import VARIABLE_TYPES, FieldScope, Step, field_type
from formwork.problems import Place, Problem, did_you_mean

if TYPE_CHECKING:  # the metadata package imports this one; only types are needed from it
    from formwork.metadata.model import Field

Level = tuple[str, ...] | None
Mode = TypingLiteral["row", "measure", "any"]
NUMBERS = ("integer", "decimal")
_ORDERED = (*NUMBERS, "string", "date", "datetime")
_DATES = ("date", "datetime")
_MAX_ROUND_DIGITS = 10


@dataclass(frozen=True)
class Typed:
    type: str
    level: Level = None
    field: Field | None = None  # set when the value is a field read directly (for choice options)


@dataclass
class Analysis:
    """What the compilers need to know beyond the tree: types, resolved paths, aggregate rows."""

    mode: Mode
    types: dict[Node, Typed] = field(default_factory=dict)
    paths: dict[Node, list[Step]] = field(default_factory=dict)
    # Call (or In over child rows) -> the table path it aggregates, or None for the report's rows.
    aggregates: dict[Node, tuple[str, ...] | None] = field(default_factory=dict)
    # String literals that stand for dates because they are compared with a date.
    dates: dict[Node, date | datetime] = field(default_factory=dict)

    def type_of(self, node: Node) -> str:
        return self.types[node].type


def check(expr: Expression, scope: FieldScope, expect: str | None = None) -> str:
    """The result type name of ``expr`` in ``scope``; raises ``ExpressionError`` on any misfit.

    With ``expect`` ("boolean" for conditions, a field type for defaults and
    computed fields) the result must fit that type too (FW-E409).
    """
    analysis = analyse(expr, scope, "measure" if scope.aggregate else "row")
    result = analysis.type_of(expr.root)
    if expect is not None and not _fits(result, expect):
        raise ExpressionError(
            WRONG_RESULT,
            f"expression gives {_plain(result)} but {_plain(_normal(expect))} is needed here",
            expr.root.column,
            "a condition needs a comparison such as amount > 0" if expect == "boolean" else None,
        )
    return result


def expression_problems(
    text: str, scope: FieldScope, place: Place | None, path: str, expect: str | None = None
) -> list[Problem]:
    """Parse and check ``text``; the problems found (none or one), located at ``place`` and ``path``.

    The problem's column is ``place.column`` moved by the error's column inside
    the expression; the message quotes the expression and the column in it.
    """
    try:
        check(parse(text), scope, expect)
    except ExpressionError as error:
        shown = text if len(text) <= 60 else text[:57] + "..."
        where = place
        if place is not None and place.column:
            where = Place(place.file, place.line, place.column + error.column - 1)
        message = f'{error.message} (column {error.column} of "{shown}")'
        return [Problem(error.code, message, where, path, error.hint)]
    return []


def analyse(expr: Expression, scope: FieldScope, mode: Mode) -> Analysis:
    """Type every node of ``expr``; the compilers use the result. Raises ``ExpressionError``."""
    checker = _Checker(scope, Analysis(mode))
    top = checker.value(expr.root)
    if top.level is not None:
        offender = _unaggregated(expr.root, checker.analysis, top.level) or expr.root
        text = offender.dotted if isinstance(offender, FieldPath) else "this value"
        if top.level == ():
            raise ExpressionError(
                ROWS_MISUSE,
                f"a measure must aggregate the report's rows, but '{text}' is one value per row",
                offender.column,
                "wrap it in sum(), count(), avg(), min() or max()",
            )
        table = ".".join(top.level)
        if checker.analysis.types[offender].type in NUMBERS:
            hint = f"e.g. sum({text}), min({text}) or count({text})"
        else:
            hint = f"e.g. 'value' in {text}, min({text}) or count({text})"
        raise ExpressionError(
            ROWS_MISUSE,
            f"'{text}' is one value per row of table '{table}' and must be aggregated",
            offender.column,
            hint,
        )
    return checker.analysis


def _unaggregated(node: Node, analysis: Analysis, level: tuple[str, ...]) -> FieldPath | None:
    """The first field path at ``level`` that no aggregate covers: the one to point at."""
    if node in analysis.aggregates:
        return None
    if isinstance(node, FieldPath) and analysis.types[node].level == level:
        return node
    for child in node.children():
        found = _unaggregated(child, analysis, level)
        if found is not None:
            return found
    return None


def _normal(type_name: str) -> str:
    if type_name in ("text", "email", "choice", "file"):
        return "string"
    return type_name


def _fits(actual: str, expect: str) -> bool:
    expect = _normal(expect)
    if actual in ("any", "null") or actual == expect:
        return True
    if expect == "decimal" and actual == "integer":
        return True
    return expect == "link" and actual.startswith("link:")


def _plain(type_name: str) -> str:
    """A type name in words for messages."""
    if type_name.startswith("link:"):
        return f"a link to {type_name[5:]}"
    if type_name.startswith("rows:"):
        return f"the rows of {type_name[5:]}"
    if type_name.startswith("list:"):
        return "a list"
    words = {
        "string": "text",
        "integer": "a whole number",
        "decimal": "a decimal number",
        "boolean": "true/false",
        "date": "a date",
        "datetime": "a date and time",
        "daterange": "a date range",
        "null": "None",
        "json": "JSON",
        "any": "a value",
    }
    return words.get(type_name, type_name)


def _unify(a: str, b: str) -> str | None:
    """The common type of two values (branches of ``if``, coalesce arguments), or None."""
    if a == b or b in ("any", "null"):
        return a
    if a in ("any", "null"):
        return b
    if a in NUMBERS and b in NUMBERS:
        return "decimal"
    return None


def parse_iso(text: str, kind: str) -> date | datetime | None:
    """``text`` as a date (kind "date") or datetime, or None when it is not ISO formatted."""
    try:
        if kind == "date":
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class _Checker:
    def __init__(self, scope: FieldScope, analysis: Analysis):
        self.scope = scope
        self.analysis = analysis
        self.own = () if analysis.mode == "measure" else None

    def record(self, node: Node, typed: Typed) -> Typed:
        self.analysis.types[node] = typed
        return typed

    def value(self, node: Node) -> Typed:
        """Type ``node`` where a plain value is needed (not rows, lists or date ranges)."""
        typed = self.visit(node)
        kind = typed.type.split(":")[0]
        if kind == "rows":
            name = node.dotted if isinstance(node, FieldPath) else "this"
            raise ExpressionError(
                ROWS_MISUSE,
                f"'{name}' is a table field holding rows",
                node.column,
                f"count them with len({name}) or aggregate a column, e.g. sum({name}.amount)",
            )
        if kind in ("list", "daterange"):
            raise ExpressionError(
                TYPE_MISMATCH, f"{_plain(typed.type)} can only be used after `in`", node.column
            )
        return typed

    def combine(self, levels: list[Level], column: int) -> Level:
        tables = {lv for lv in levels if lv}
        if len(tables) > 1:
            names = " and ".join(sorted("'" + ".".join(t) + "'" for t in tables))
            raise ExpressionError(ROWS_MISUSE, f"rows of {names} cannot be mixed in one calculation", column)
        if tables:
            return tables.pop()
        return () if () in levels else None

    def visit(self, node: Node) -> Typed:
        method = getattr(self, "visit_" + type(node).__name__)
        return self.record(node, method(node))

    def visit_Literal(self, node: Literal) -> Typed:
        value = node.value
        if value is None:
            return Typed("null")
        if isinstance(value, bool):
            return Typed("boolean")
        if isinstance(value, int):
            return Typed("integer")
        if isinstance(value, str):
            return Typed("string")
        return Typed("decimal")

    def visit_ListLiteral(self, node: ListLiteral) -> Typed:
        element = "any"
        for item in node.items:
            typed = self.visit(item)
            if typed.type == "null":
                raise ExpressionError(
                    TYPE_MISMATCH,
                    "None in a list never matches",
                    item.column,
                    "test with `x is None` instead",
                )
            unified = _unify(element, typed.type)
            if unified is None:
                raise ExpressionError(
                    TYPE_MISMATCH,
                    f"a list mixes {_plain(element)} and {_plain(typed.type)}",
                    item.column,
                )
            element = unified
        return Typed(f"list:{element}")

    def visit_FieldPath(self, node: FieldPath) -> Typed:
        steps = self.scope.resolve(node.parts, node.column)
        self.analysis.paths[node] = steps
        level = self.own
        for i, step in enumerate(steps[:-1]):
            if step.kind == "table":
                level = node.parts[: i + 1]
        last = steps[-1].field
        return Typed(field_type(last), level, last)

    def visit_VariablePath(self, node: VariablePath) -> Typed:
        known = self.scope.variable_types()
        if node.name not in known:
            hint = did_you_mean("$" + node.name, ["$" + n for n in known]) or "available: " + ", ".join(
                "$" + n for n in known
            )
            raise ExpressionError(UNKNOWN_VARIABLE, f"unknown variable '${node.name}'", node.column, hint)
        kind = known[node.name]
        if not (kind in VARIABLE_TYPES or kind.startswith(("link:", "list:"))):
            kind = "any"
        if not node.parts:
            self.analysis.paths[node] = []
            return Typed(kind)
        if not kind.startswith("link:"):
            raise ExpressionError(
                UNKNOWN_FIELD,
                f"'${node.name}' is {_plain(kind)} and has no field '{node.parts[0]}'",
                node.column,
            )
        steps = self.scope.resolve(node.parts, node.column, start=kind[5:])
        if any(step.kind == "table" for step in steps):
            raise ExpressionError(
                ROWS_MISUSE, f"'{node.dotted}' reaches child rows, which variables cannot", node.column
            )
        self.analysis.paths[node] = steps
        return Typed(field_type(steps[-1].field), None, steps[-1].field)

    def visit_Compare(self, node: Compare) -> Typed:
        left = self.value(node.left)
        right = self.value(node.right)
        self.comparable(node.op, node.left, left, node.right, right, node.column)
        return Typed("boolean", self.combine([left.level, right.level], node.column))

    def comparable(self, op: str, a: Node, at: Typed, b: Node, bt: Typed, column: int) -> None:
        """Refuse comparing ``a`` with ``b``; string literals standing for dates are noted."""
        if "null" in (at.type, bt.type):
            raise ExpressionError(
                TYPE_MISMATCH,
                "comparing with None is never true",
                column,
                "write `x is None` or `x is not None`",
            )
        if "any" in (at.type, bt.type):
            return
        for this_t, other, other_t in ((at, b, bt), (bt, a, at)):
            if this_t.type in _DATES and other_t.type == "string":
                self.date_literal(other, this_t.type)
                return
            if this_t.field is not None and this_t.field.options and isinstance(other, Literal):
                self.choice_literal(this_t.field, other)
        kinds = {at.type, bt.type}
        ordered = op not in ("==", "!=", "in")
        if at.type == bt.type:
            ok = at.type in _ORDERED or (not ordered and at.type != "json")
        elif kinds <= set(NUMBERS) or kinds <= set(_DATES):
            ok = True
        else:
            links = [t for t in kinds if t.startswith("link:")]
            ok = not ordered and len(links) == 1 and "integer" in kinds
        if not ok:
            hint = None
            if "json" in kinds:
                hint = "json fields can only be tested with `is None`"
            elif "string" in kinds and any(t.startswith("link:") for t in kinds):
                linked = a if at.type.startswith("link:") else b
                name = linked.dotted if isinstance(linked, FieldPath | VariablePath) else "the link"
                hint = f"compare a field of the linked record, e.g. {name}.name"
            raise ExpressionError(
                TYPE_MISMATCH,
                f"cannot compare {_plain(at.type)} with {_plain(bt.type)} using {op}",
                column,
                hint,
            )

    def date_literal(self, node: Node, kind: str) -> None:
        """Note the date a string literal compared with ``kind`` stands for, or refuse it."""
        if not (isinstance(node, Literal) and isinstance(node.value, str)):
            raise ExpressionError(
                TYPE_MISMATCH,
                f"cannot compare {_plain(kind)} with text",
                node.column,
                "use date('2024-01-31')",
            )
        # a plain day compares by day even with a datetime, as date('...') does
        value = parse_iso(node.value, "date") or parse_iso(node.value, "datetime")
        if value is None:
            raise ExpressionError(
                TYPE_MISMATCH,
                f"'{node.value}' is not a date",
                node.column,
                "write dates as 'YYYY-MM-DD', e.g. '2024-01-31'",
            )
        self.analysis.dates[node] = value

    def choice_literal(self, choice: Field, node: Literal) -> None:
        values = choice.option_values
        if isinstance(node.value, str) and node.value not in values:
            raise ExpressionError(
                TYPE_MISMATCH,
                f"'{node.value}' is not an option of {choice.name}",
                node.column,
                did_you_mean(node.value, values) or "options: " + ", ".join(values),
            )

    def visit_IsNone(self, node: IsNone) -> Typed:
        return Typed("boolean", self.value(node.operand).level)

    def visit_In(self, node: In) -> Typed:
        item = self.value(node.item)
        container = self.visit(node.container)
        kind = container.type
        if kind == "any":  # a parameter whose type is only known from its value at run time
            return Typed("boolean", item.level)
        if kind == "daterange":
            if item.type not in (*_DATES, "any"):
                raise ExpressionError(
                    TYPE_MISMATCH, f"only dates can be in a date range, not {_plain(item.type)}", node.column
                )
            return Typed("boolean", item.level)
        if isinstance(node.container, ListLiteral):
            for literal in node.container.items:
                self.comparable("in", node.item, item, literal, self.analysis.types[literal], literal.column)
            return Typed("boolean", item.level)
        if kind.startswith("list:"):
            self.comparable("in", node.item, item, node.container, Typed(kind[5:]), node.column)
            return Typed("boolean", self.combine([item.level, container.level], node.column))
        if container.level and isinstance(node.container, FieldPath) and not kind.startswith("rows:"):
            if item.level == container.level:
                raise ExpressionError(
                    ROWS_MISUSE, "both sides of `in` are values of the same child rows", node.column
                )
            self.comparable(
                "in", node.item, item, node.container, Typed(kind, None, container.field), node.column
            )
            self.analysis.aggregates[node] = container.level
            return Typed("boolean", self.combine([item.level, self.own], node.column))
        hint = "use contains(text, part)" if kind == "string" else "e.g. status in ['draft', 'pending']"
        raise ExpressionError(
            TYPE_MISMATCH,
            f"`in` needs a list, a date range or a child-row field on the right, not {_plain(kind)}",
            node.container.column,
            hint,
        )

    def visit_BoolOp(self, node: BoolOp) -> Typed:
        levels = [self.boolean(operand, node.op).level for operand in node.operands]
        return Typed("boolean", self.combine(levels, node.column))

    def boolean(self, node: Node, word: str) -> Typed:
        typed = self.value(node)
        if typed.type not in ("boolean", "any"):
            raise ExpressionError(
                TYPE_MISMATCH,
                f"`{word}` needs true/false values, got {_plain(typed.type)}",
                node.column,
                "compare explicitly, e.g. amount > 0 or name is not None",
            )
        return typed

    def visit_Not(self, node: Not) -> Typed:
        return Typed("boolean", self.boolean(node.operand, "not").level)

    def visit_Arithmetic(self, node: Arithmetic) -> Typed:
        left = self.value(node.left)
        right = self.value(node.right)
        level = self.combine([left.level, right.level], node.column)
        result = self.arithmetic(node.op, left.type, right.type)
        if result is None:
            hint = None
            if node.op == "-" and left.type in _DATES and right.type in _DATES:
                hint = "use days_between(start, end)"
            elif node.op == "%":
                hint = "% works on whole numbers"
            elif "string" in (left.type, right.type):
                hint = "text can only be joined with + to other text"
            raise ExpressionError(
                TYPE_MISMATCH,
                f"cannot calculate {_plain(left.type)} {node.op} {_plain(right.type)}",
                node.column,
                hint,
            )
        return Typed(result, level)

    @staticmethod
    def arithmetic(op: str, a: str, b: str) -> str | None:
        if "any" in (a, b):
            other = b if a == "any" else a
            return other if other in (*NUMBERS, "string", "date", "any") else None
        if op == "%":
            return "integer" if a == b == "integer" else None
        if a in NUMBERS and b in NUMBERS:
            return "decimal" if op == "/" or "decimal" in (a, b) else "integer"
        if op == "+" and a == b == "string":
            return "string"
        if op in "+-" and a == "date" and b == "integer":
            return "date"
        if op == "+" and a == "integer" and b == "date":
            return "date"
        return None

    def visit_Negate(self, node: Negate) -> Typed:
        operand = self.value(node.operand)
        if operand.type not in (*NUMBERS, "any"):
            raise ExpressionError(TYPE_MISMATCH, f"cannot negate {_plain(operand.type)}", node.column)
        return Typed(operand.type, operand.level)

    def visit_Conditional(self, node: Conditional) -> Typed:
        test = self.boolean(node.test, "if")
        then = self.value(node.then)
        otherwise = self.value(node.otherwise)
        result = _unify(then.type, otherwise.type)
        if result is None:
            raise ExpressionError(
                TYPE_MISMATCH,
                f"the two results of `if` differ: {_plain(then.type)} and {_plain(otherwise.type)}",
                node.column,
            )
        return Typed(result, self.combine([test.level, then.level, otherwise.level], node.column))

    def visit_Call(self, node: Call) -> Typed:
        function = FUNCTIONS[node.function]
        if function.aggregate:
            return self.aggregate(node)
        return getattr(self, "call_" + node.function)(node, function.signature)

    def expect_args(self, node: Call, signature: str, *allowed: tuple[str, ...]) -> list[Typed]:
        typed = []
        for arg, kinds in zip(node.args, allowed, strict=False):
            t = self.value(arg)
            if t.type not in (*kinds, "any", "null"):
                raise ExpressionError(
                    BAD_ARGUMENTS,
                    f"{node.function}() cannot take {_plain(t.type)}",
                    arg.column,
                    signature,
                )
            typed.append(t)
        return typed

    def plain_call(self, node: Call, result: str, typed: list[Typed]) -> Typed:
        return Typed(result, self.combine([t.level for t in typed], node.column))

    def call_today(self, node: Call, signature: str) -> Typed:
        return Typed("date")

    def call_now(self, node: Call, signature: str) -> Typed:
        return Typed("datetime")

    def call_abs(self, node: Call, signature: str) -> Typed:
        (x,) = self.expect_args(node, signature, NUMBERS)
        return self.plain_call(node, x.type if x.type in NUMBERS else "decimal", [x])

    def call_round(self, node: Call, signature: str) -> Typed:
        (x,) = self.expect_args(node, signature, NUMBERS)
        if len(node.args) == 2:
            digits = node.args[1]
            self.visit(digits)
            if not (
                isinstance(digits, Literal)
                and type(digits.value) is int
                and 0 <= digits.value <= _MAX_ROUND_DIGITS
            ):
                raise ExpressionError(
                    BAD_ARGUMENTS,
                    f"round() needs a whole number from 0 to {_MAX_ROUND_DIGITS} as digits",
                    digits.column,
                    signature,
                )
        whole = len(node.args) == 1 or x.type == "integer"
        return self.plain_call(node, "integer" if whole else "decimal", [x])

    def call_lower(self, node: Call, signature: str) -> Typed:
        return self.plain_call(node, "string", self.expect_args(node, signature, ("string",)))

    call_upper = call_lower

    def call_year(self, node: Call, signature: str) -> Typed:
        return self.plain_call(node, "integer", self.expect_args(node, signature, _DATES))

    call_month = call_year
    call_day = call_year

    def call_days_between(self, node: Call, signature: str) -> Typed:
        return self.plain_call(node, "integer", self.expect_args(node, signature, _DATES, _DATES))

    def call_contains(self, node: Call, signature: str) -> Typed:
        return self.plain_call(node, "boolean", self.expect_args(node, signature, ("string",), ("string",)))

    call_startswith = call_contains

    def call_date(self, node: Call, signature: str) -> Typed:
        (arg,) = node.args
        self.visit(arg)
        value = (
            parse_iso(arg.value, "date") if isinstance(arg, Literal) and isinstance(arg.value, str) else None
        )
        if value is None:
            raise ExpressionError(
                BAD_ARGUMENTS, "date() needs a literal date written 'YYYY-MM-DD'", arg.column, signature
            )
        self.analysis.dates[arg] = value
        return Typed("date")

    def call_coalesce(self, node: Call, signature: str) -> Typed:
        typed = [self.value(arg) for arg in node.args]
        result = "null"
        for arg, t in zip(node.args, typed, strict=True):
            unified = _unify(result, t.type)
            if unified is None:
                raise ExpressionError(
                    BAD_ARGUMENTS,
                    f"coalesce() mixes {_plain(result)} and {_plain(t.type)}",
                    arg.column,
                    signature,
                )
            result = unified
        return self.plain_call(node, result, typed)

    def call_len(self, node: Call, signature: str) -> Typed:
        (arg,) = node.args
        typed = self.visit(arg)
        if typed.type.startswith("rows:") or typed.level:
            return self.count_rows(node, arg, typed)
        if typed.type in ("string", "any", "null") or typed.type.startswith("list:"):
            return Typed("integer", typed.level)
        raise ExpressionError(BAD_ARGUMENTS, f"len() cannot take {_plain(typed.type)}", arg.column, signature)

    def count_rows(self, node: Call, arg: Node, typed: Typed) -> Typed:
        """len(lines), count(lines), len(lines.x): the number of child rows."""
        if typed.type.startswith("rows:"):
            assert isinstance(arg, FieldPath)
            table = arg.parts
            if typed.level:
                raise ExpressionError(ROWS_MISUSE, "only one level of child rows can be counted", arg.column)
        else:
            table = typed.level
        self.analysis.aggregates[node] = table
        return Typed("integer", self.own)

    def aggregate(self, node: Call) -> Typed:
        name = node.function
        signature = FUNCTIONS[name].signature
        if not node.args:  # count()
            if self.analysis.mode == "row":
                raise ExpressionError(
                    ROWS_MISUSE,
                    "count() without a value counts report rows and only works in report measures",
                    node.column,
                    "count child rows with len(lines)",
                )
            self.analysis.aggregates[node] = None
            return Typed("integer")
        (arg,) = node.args
        typed = self.visit(arg)
        if name == "count" and typed.type.startswith("rows:"):
            return self.count_rows(node, arg, typed)
        typed = self.value(arg)
        allowed = {"sum": NUMBERS, "avg": NUMBERS, "min": _ORDERED, "max": _ORDERED}.get(name)
        if allowed is not None and typed.type not in (*allowed, "any", "null"):
            raise ExpressionError(
                BAD_ARGUMENTS,
                f"{name}() cannot take {_plain(typed.type)}; measures need numeric fields"
                if name in ("sum", "avg")
                else f"{name}() cannot take {_plain(typed.type)}",
                arg.column,
                signature,
            )
        if typed.level:
            self.analysis.aggregates[node] = typed.level
            level = self.own
        elif typed.level == () or self.analysis.mode != "row":
            self.analysis.aggregates[node] = None
            level = None
        else:
            raise ExpressionError(
                ROWS_MISUSE,
                f"{name}() aggregates values of child rows",
                node.column,
                f"e.g. {name}(lines.amount) where lines is a table field",
            )
        result = {"count": "integer", "avg": "decimal"}.get(name, typed.type)
        return Typed(result, level)
