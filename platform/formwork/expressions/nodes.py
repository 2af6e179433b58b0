"""The parsed form of an expression: a small tree of immutable nodes.

Every node carries ``column``, the 1-based character position in the expression
text where it starts, so later stages (type checking) can point at the fault.
Python's ``ast`` nodes never leave the parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from decimal import Decimal

LiteralValue = str | int | Decimal | bool | None


@dataclass(frozen=True)
class Node:
    column: int

    def children(self) -> Iterator[Node]:
        """The direct sub-nodes, in source order."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Node):
                yield value
            elif isinstance(value, tuple):
                yield from (v for v in value if isinstance(v, Node))

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(frozen=True)
class Literal(Node):
    value: LiteralValue


@dataclass(frozen=True)
class ListLiteral(Node):
    items: tuple[Literal, ...]


@dataclass(frozen=True)
class FieldPath(Node):
    """``department.name``: a field of the record, then fields of linked or child records."""

    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class VariablePath(Node):
    """``$user.department``: ``name`` is user, today, now or a parameter; ``parts`` follow it.

    ``$params.period`` and ``$period`` both become ``VariablePath(name="period")``.
    """

    name: str
    parts: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return "$" + ".".join((self.name, *self.parts))


@dataclass(frozen=True)
class Compare(Node):
    """One binary comparison; chains like ``a < b < c`` become ``And`` of two of these."""

    op: str  # == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class IsNone(Node):
    operand: Node
    negated: bool = False


@dataclass(frozen=True)
class In(Node):
    item: Node
    container: Node
    negated: bool = False


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # and | or
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class Arithmetic(Node):
    op: str  # + - * / %
    left: Node
    right: Node


@dataclass(frozen=True)
class Negate(Node):
    operand: Node


@dataclass(frozen=True)
class Conditional(Node):
    """``then if test else otherwise``."""

    test: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Call(Node):
    function: str
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Expression:
    """A parsed expression: the original ``text`` and the ``root`` node."""

    text: str
    root: Node

    def field_paths(self) -> tuple[str, ...]:
        """Dotted field paths the expression reads, in order of first use (no duplicates)."""
        seen = dict.fromkeys(n.dotted for n in self.root.walk() if isinstance(n, FieldPath))
        return tuple(seen)

    def variables(self) -> tuple[str, ...]:
        """Names of the $variables the expression reads (``user``, ``today``, parameters)."""
        seen = dict.fromkeys(n.name for n in self.root.walk() if isinstance(n, VariablePath))
        return tuple(seen)

    def __str__(self) -> str:
        return self.text
