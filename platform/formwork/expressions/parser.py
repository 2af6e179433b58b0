"""Text to ``Expression``: Python's own parser, then a whitelist translation into our nodes.

``$name`` is not Python, so before parsing each ``$`` outside string literals is
swapped for one marker letter that no field name can contain; the swap keeps
every character in place, so columns reported by ``ast`` still point at the
user's text. Anything ``ast`` accepts that is not explicitly allowed below is
refused with a located FW-E4xx error.
"""

from __future__ import annotations

import ast
import warnings
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from formwork.expressions.errors import (
    BAD_ARGUMENTS,
    BAD_NAME,
    MAX_DEPTH,
    MAX_LENGTH,
    NOT_ALLOWED,
    SYNTAX,
    TOO_COMPLEX,
    UNKNOWN_FUNCTION,
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
from formwork.problems import did_you_mean

# A letter Python accepts in identifiers and NFKC leaves alone; field names are ASCII snake_case.
_MARKER = "ǃ"
# Numbers beyond this many digits of magnitude are refused: nothing in a form needs them and
# Decimal arithmetic on huge exponents is a way to burn CPU.
_MAX_MAGNITUDE = 30

_COMPARE_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_ARITH_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_REFUSED_BINOPS = {
    ast.Pow: ("the power operator ** is not allowed", "multiply explicitly, e.g. x * x"),
    ast.FloorDiv: ("integer division // is not allowed", "use round(a / b) instead"),
    ast.BitAnd: ("the bitwise operator & is not allowed", "use `and` for conditions"),
    ast.BitOr: ("the bitwise operator | is not allowed", "use `or` for conditions"),
    ast.BitXor: ("the bitwise operator ^ is not allowed", None),
    ast.LShift: ("the shift operator << is not allowed", None),
    ast.RShift: ("the shift operator >> is not allowed", None),
    ast.MatMult: ("the operator @ is not allowed", None),
}
_REFUSED_NODES = {
    ast.Subscript: ("indexing with [...] is not allowed", "use a field path such as lines.amount"),
    ast.Lambda: ("lambda is not allowed", None),
    ast.ListComp: ("comprehensions are not allowed", "aggregate child rows with sum(lines.amount)"),
    ast.SetComp: ("comprehensions are not allowed", "aggregate child rows with sum(lines.amount)"),
    ast.DictComp: ("comprehensions are not allowed", "aggregate child rows with sum(lines.amount)"),
    ast.GeneratorExp: ("comprehensions are not allowed", "aggregate child rows with sum(lines.amount)"),
    ast.JoinedStr: ("f-strings are not allowed", "join text with +, e.g. first_name + ' ' + last_name"),
    ast.FormattedValue: ("f-strings are not allowed", None),
    ast.NamedExpr: ("assignment with := is not allowed", None),
    ast.Starred: ("* unpacking is not allowed", None),
    ast.Dict: ("dictionaries are not allowed", None),
    ast.Set: ("sets are not allowed", "use a list: x in ['a', 'b']"),
    ast.Await: ("await is not allowed", None),
    ast.Yield: ("yield is not allowed", None),
    ast.YieldFrom: ("yield is not allowed", None),
    ast.Slice: ("slices are not allowed", None),
}


@lru_cache(maxsize=4096)  # expressions are immutable, so one parse can serve every caller
def parse(text: str) -> Expression:
    """Parse expression ``text`` into an immutable ``Expression``.

    Raises ``ExpressionError`` (FW-E401..FW-E405) naming the column of the first
    thing that is not valid or not allowed.
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            TOO_COMPLEX,
            f"expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed",
            MAX_LENGTH + 1,
            "move the logic into a computed field or a plugin hook",
        )
    if not text.strip():
        raise ExpressionError(SYNTAX, "expression is empty", 1)
    if "\x00" in text:
        raise ExpressionError(SYNTAX, "expression contains a NUL character", text.index("\x00") + 1)
    # Python also ends lines at \r; making every line end a \n keeps our line arithmetic and
    # Python's in step without moving any character
    source = _mark_variables(text.replace("\r\n", " \n").replace("\r", "\n"))
    try:
        with warnings.catch_warnings():
            # Python's warnings about its own source ("invalid escape sequence") mean nothing here
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise _syntax_error(source, text, error) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(TOO_COMPLEX, "expression is nested too deeply", 1) from None
    return Expression(text, _Translator(text, source).node(tree.body, 0))


def _mark_variables(text: str) -> str:
    """Replace each ``$`` that starts a name outside string literals with the marker letter."""
    out = list(text)
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif ch in "'\"":
            quote = text[i : i + 3] if text[i : i + 3] in ("'''", '"""') else ch
            i += len(quote)
            continue
        elif ch == "$" and _starts_name(text, i + 1) and not (i and _in_name(text[i - 1])):
            out[i] = _MARKER
        i += 1
    return "".join(out)


def _starts_name(text: str, i: int) -> bool:
    return i < len(text) and (text[i].isalpha() or text[i] == "_")


def _in_name(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _syntax_error(source: str, text: str, error: SyntaxError) -> ExpressionError:
    column = min(_line_start(source, error.lineno or 1) + (error.offset or 1), len(text) + 1)
    if "too many nested" in (error.msg or ""):
        return ExpressionError(TOO_COMPLEX, "expression is nested too deeply", column)
    if 0 < column <= len(text) and text[column - 1] == "$":
        return ExpressionError(
            SYNTAX, "'$' must be followed by a variable name", column, "e.g. $user, $today or $params.period"
        )
    return ExpressionError(SYNTAX, f"not a valid expression: {error.msg}", column)


def _line_start(text: str, lineno: int) -> int:
    """Characters before line ``lineno`` (1-based) of ``text``."""
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[: lineno - 1])


class _Translator:
    """Turns whitelisted ``ast`` nodes into expression nodes, refusing the rest."""

    def __init__(self, text: str, source: str):
        self.text = text
        self.source = source
        self.lines = source.split("\n")

    def column(self, node: ast.AST, end: bool = False) -> int:
        """1-based character column in the whole text; ``ast`` counts UTF-8 bytes per line."""
        lineno = node.end_lineno if end else node.lineno
        offset = node.end_col_offset if end else node.col_offset
        line = self.lines[lineno - 1]
        chars = len(line.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))
        return _line_start(self.source, lineno) + chars + 1

    def refuse(self, node: ast.AST, message: str, hint: str | None = None, code: str = NOT_ALLOWED):
        return ExpressionError(code, message, self.column(node), hint)

    def node(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.refuse(
                node,
                f"expression is nested more than {MAX_DEPTH} levels deep",
                "split it into computed fields",
                TOO_COMPLEX,
            )
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            message, hint = _REFUSED_NODES.get(type(node), (f"{_describe(node)} is not allowed", None))
            raise self.refuse(node, message, hint)
        return method(node, depth + 1)

    def _Constant(self, node: ast.Constant, depth: int) -> Node:
        return self.literal(node)

    def literal(self, node: ast.Constant, negative: bool = False) -> Literal:
        value = node.value
        column = self.column(node)
        if value is None or isinstance(value, bool | str):
            return Literal(column, value)
        if isinstance(value, int | float):
            if isinstance(value, float):
                segment = ast.get_source_segment(self.source, node) or repr(value)
                try:
                    number: int | Decimal = Decimal(segment.replace("_", ""))
                except InvalidOperation:
                    number = Decimal(repr(value))
            else:
                number = value
            if number != 0 and abs(Decimal(number)).adjusted() >= _MAX_MAGNITUDE:
                raise self.refuse(
                    node, "number is too large", f"numbers may have at most {_MAX_MAGNITUDE} digits"
                )
            return Literal(column, -number if negative else number)
        kind = {bytes: "bytes literals are", complex: "complex numbers are"}.get(
            type(value), "this literal is"
        )
        raise self.refuse(node, f"{kind} not allowed")

    def _List(self, node: ast.List | ast.Tuple, depth: int) -> Node:
        items = []
        for item in node.elts:
            if isinstance(item, ast.Constant):
                items.append(self.literal(item))
            elif (
                isinstance(item, ast.UnaryOp)
                and isinstance(item.op, ast.USub)
                and isinstance(item.operand, ast.Constant)
                and type(item.operand.value) in (int, float)
            ):
                items.append(self.literal(item.operand, negative=True))
                items[-1] = Literal(self.column(item), items[-1].value)
            else:
                raise self.refuse(item, "a list may hold only literal values", "e.g. ['draft', 'pending']")
        return ListLiteral(self.column(node), tuple(items))

    _Tuple = _List

    def _Name(self, node: ast.Name, depth: int) -> Node:
        return self.path(node, node, [])

    def _Attribute(self, node: ast.Attribute, depth: int) -> Node:
        parts: list[ast.Attribute] = []
        base: ast.AST = node
        while isinstance(base, ast.Attribute):
            parts.append(base)
            base = base.value
        if not isinstance(base, ast.Name):
            raise self.refuse(
                node,
                f"'.{parts[-1].attr}' can only follow a field path, not {_describe(base)}",
                "functions are called as name(value), e.g. upper(title)",
            )
        return self.path(node, base, list(reversed(parts)))

    def path(self, node: ast.AST, base: ast.Name, attributes: list[ast.Attribute]) -> Node:
        previous: ast.AST = base
        for attribute in attributes:
            between = self.source_between(previous, attribute)
            if ")" in between:
                raise ExpressionError(
                    NOT_ALLOWED,
                    f"'.{attribute.attr}' can only follow a field path, not a parenthesised expression",
                    self.attribute_column(attribute),
                    "write the path without parentheses, e.g. department.name",
                )
            previous = attribute
        names = [base.id] + [a.attr for a in attributes]
        columns = [self.column(base)] + [self.attribute_column(a) for a in attributes]
        for name, column in zip(names, columns, strict=True):
            if name.startswith("_"):
                raise ExpressionError(BAD_NAME, f"names starting with '_' are not allowed: '{name}'", column)
        column = self.column(base)
        if base.id.startswith(_MARKER):
            if self.text[column - 1] != "$":
                raise self.refuse(base, f"'{base.id}' is not a valid name", None, BAD_NAME)
            variable = base.id[len(_MARKER) :]
            if variable.startswith("_"):
                raise self.refuse(
                    base, f"names starting with '_' are not allowed: '${variable}'", None, BAD_NAME
                )
            rest = names[1:]
            if variable == "params":
                if not rest:
                    raise self.refuse(base, "$params needs a parameter name", "e.g. $params.period")
                variable, rest = rest[0], rest[1:]
            return VariablePath(column, variable, tuple(rest))
        if not all(name.isascii() for name in names):
            raise self.refuse(base, "field names are plain ASCII snake_case", None, BAD_NAME)
        return FieldPath(column, tuple(names))

    def attribute_column(self, attribute: ast.Attribute) -> int:
        """Column of the name after the dot (``ast`` only gives where the whole path starts)."""
        return self.column(attribute, end=True) - len(attribute.attr)

    def source_between(self, first: ast.AST, second: ast.Attribute) -> str:
        """Text from the end of ``first`` up to the attribute name of ``second``."""
        start = self.column(first, end=True) - 1
        end = self.attribute_column(second) - 1
        return self.source[start:end]

    def _Compare(self, node: ast.Compare, depth: int) -> Node:
        column = self.column(node)
        parts: list[Node] = []
        left_ast = node.left
        left = self.node(node.left, depth)
        for op, right_ast in zip(node.ops, node.comparators, strict=True):
            right = self.node(right_ast, depth)
            if isinstance(op, ast.Is | ast.IsNot):
                negated = isinstance(op, ast.IsNot)
                word = "is not" if negated else "is"
                if isinstance(left, Literal) and left.value is None:
                    raise self.refuse(left_ast, f"write `x {word} None`, with None on the right")
                if not (isinstance(right, Literal) and right.value is None):
                    raise self.refuse(
                        right_ast, f"`{word}` may only compare with None", "use == or != to compare values"
                    )
                parts.append(IsNone(column, left, negated))
            elif isinstance(op, ast.In | ast.NotIn):
                parts.append(In(column, left, right, isinstance(op, ast.NotIn)))
            else:
                parts.append(Compare(column, _COMPARE_OPS[type(op)], left, right))
            left, left_ast = right, right_ast
        return parts[0] if len(parts) == 1 else BoolOp(column, "and", tuple(parts))

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(self.column(node), op, tuple(self.node(v, depth) for v in node.values))

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Node:
        if isinstance(node.op, ast.Not):
            return Not(self.column(node), self.node(node.operand, depth))
        if isinstance(node.op, ast.USub):
            if isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
                literal = self.literal(node.operand, negative=True)
                return Literal(self.column(node), literal.value)
            return Negate(self.column(node), self.node(node.operand, depth))
        if isinstance(node.op, ast.Invert):
            raise self.refuse(node, "the bitwise operator ~ is not allowed", "use `not` for conditions")
        raise self.refuse(node, "unary + is not allowed", "drop the +")

    def _BinOp(self, node: ast.BinOp, depth: int) -> Node:
        if type(node.op) in _REFUSED_BINOPS:
            message, hint = _REFUSED_BINOPS[type(node.op)]
            raise self.refuse(node, message, hint)
        op = _ARITH_OPS[type(node.op)]
        left = self.node(node.left, depth)
        right = self.node(node.right, depth)
        if op == "*" and any(isinstance(s, Literal) and isinstance(s.value, str) for s in (left, right)):
            raise self.refuse(node, "text cannot be multiplied")
        return Arithmetic(self.column(node), op, left, right)

    def _IfExp(self, node: ast.IfExp, depth: int) -> Node:
        return Conditional(
            self.column(node),
            self.node(node.test, depth),
            self.node(node.body, depth),
            self.node(node.orelse, depth),
        )

    def _Call(self, node: ast.Call, depth: int) -> Node:
        func = node.func
        if isinstance(func, ast.Attribute):
            hint = (
                f"call it as a function: {func.attr}(...)"
                if func.attr in FUNCTIONS
                else "functions are called as name(value), e.g. upper(title)"
            )
            raise self.refuse(node, f"method calls like .{func.attr}() are not allowed", hint)
        if not isinstance(func, ast.Name) or func.id.startswith(_MARKER):
            raise self.refuse(node, "only the listed functions can be called", None, UNKNOWN_FUNCTION)
        name = func.id
        if name.startswith("_"):
            raise self.refuse(func, f"names starting with '_' are not allowed: '{name}'", None, BAD_NAME)
        function = FUNCTIONS.get(name)
        if function is None:
            hint = did_you_mean(name, FUNCTIONS) or "functions: " + ", ".join(FUNCTIONS)
            raise self.refuse(node, f"unknown function '{name}'", hint, UNKNOWN_FUNCTION)
        if node.keywords:
            raise self.refuse(
                node.keywords[0], f"keyword arguments are not allowed in {name}()", function.signature
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.refuse(arg, "* unpacking is not allowed")
        count = len(node.args)
        if count < function.min_args or (function.max_args is not None and count > function.max_args):
            raise self.refuse(
                node,
                f"{name}() takes {_arity(function.min_args, function.max_args)}, got {count}",
                function.signature,
                BAD_ARGUMENTS,
            )
        return Call(self.column(node), name, tuple(self.node(a, depth) for a in node.args))


def _arity(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low} argument{'s' if low != 1 else ''}"
    if low == high:
        return f"{low} argument{'s' if low != 1 else ''}" if low else "no arguments"
    return f"{low} to {high} arguments"


def _describe(node: ast.AST) -> str:
    names = {
        ast.Constant: "a literal",
        ast.Call: "a function call",
        ast.BinOp: "a calculation",
        ast.Subscript: "an index",
        ast.List: "a list",
        ast.Tuple: "a tuple",
    }
    return names.get(type(node), f"'{type(node).__name__}'")
