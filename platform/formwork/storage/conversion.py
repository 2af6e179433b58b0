"""Column type changes: which are widening, which need the data checked, which narrow.

A change is judged on the shape of the old (reflected) and new types, never on
their SQL spelling, so SQLite's and PostgreSQL's reflections give the same answer.
The value tests here decide whether an existing value survives the conversion
unchanged; they mirror the CASTs migrate runs on both engines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from formwork.storage.plan import DESTRUCTIVE, NEEDS_DATA, SAFE

INT_RANGES = {32: (-(2**31), 2**31 - 1), 64: (-(2**63), 2**63 - 1)}
_INTEGER_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")


@dataclass(frozen=True)
class Shape:
    """A type reduced to what matters for conversions: kind plus size."""

    kind: str  # string | text | integer | decimal | float | boolean | date | datetime | json | other
    length: int | None = None  # string
    bits: int | None = None  # integer
    precision: int | None = None  # decimal
    scale: int | None = None  # decimal

    def __str__(self) -> str:
        if self.kind == "string":
            return f"string({self.length})"
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        if self.kind == "integer":
            return "integer" if self.bits == 32 else f"integer({self.bits}-bit)"
        return self.kind


@dataclass(frozen=True)
class TypeChange:
    """How a type change is treated: its safety, why, and (when the data decides) a value test.

    ``supported`` False means Formwork cannot convert this pair the same way on every engine.
    """

    safety: str
    reason: str
    accepts: Callable[[Any], bool] | None = None
    supported: bool = True


def shape_of(sql_type: sa.types.TypeEngine) -> Shape:
    """The Shape of a SQLAlchemy type, reflected or declared."""
    if isinstance(sql_type, sa.Boolean):
        return Shape("boolean")
    if isinstance(sql_type, sa.Integer):
        return Shape("integer", bits=64 if isinstance(sql_type, sa.BigInteger) else 32)
    if isinstance(sql_type, sa.Float):
        return Shape("float")
    if isinstance(sql_type, sa.Numeric):
        return Shape("decimal", precision=sql_type.precision, scale=sql_type.scale or 0)
    if isinstance(sql_type, sa.DateTime):
        return Shape("datetime")
    if isinstance(sql_type, sa.Date):
        return Shape("date")
    if isinstance(sql_type, sa.JSON):
        return Shape("json")
    if isinstance(sql_type, sa.String):
        if isinstance(sql_type, sa.Text) or sql_type.length is None:
            return Shape("text")
        return Shape("string", length=sql_type.length)
    return Shape("other")


def classify(old: Shape, new: Shape) -> TypeChange:
    """Judge the change from ``old`` to ``new``."""
    change = f"{old} -> {new}"
    if old.kind in ("string", "text") and new.kind in ("string", "text"):
        if new.kind == "text" or (old.kind == "string" and new.length >= old.length):
            return TypeChange(SAFE, f"widen {change}")
        return TypeChange(DESTRUCTIVE, f"narrow {change}", _fits_length(new.length))
    if old.kind == new.kind == "integer":
        if new.bits >= old.bits:
            return TypeChange(SAFE, f"widen {change}")
        return TypeChange(DESTRUCTIVE, f"narrow {change}", _fits_integer(new.bits))
    if old.kind == "integer" and new.kind == "decimal":
        if _integer_digits(new) >= (10 if old.bits == 32 else 19):
            return TypeChange(SAFE, f"widen {change}")
        return TypeChange(DESTRUCTIVE, f"narrow {change}", _fits_decimal(new))
    if old.kind == new.kind == "decimal":
        if old.precision is None or new.precision is None:
            return TypeChange(SAFE if new.precision is None else DESTRUCTIVE, change, _fits_decimal(new))
        if new.scale >= old.scale and _integer_digits(new) >= _integer_digits(old):
            return TypeChange(SAFE, f"widen {change}")
        return TypeChange(DESTRUCTIVE, f"narrow {change}", _fits_decimal(new))
    if old.kind == "decimal" and new.kind == "integer":
        return TypeChange(DESTRUCTIVE, f"narrow {change}", _fits_integer(new.bits))
    if old.kind in ("string", "text") and new.kind == "integer":
        return TypeChange(NEEDS_DATA, f"convert {change}", _fits_integer(new.bits))
    if old.kind in ("string", "text") and new.kind == "decimal":
        return TypeChange(NEEDS_DATA, f"convert {change}", _fits_decimal(new))
    if old.kind in ("integer", "decimal", "boolean") and new.kind == "text":
        return TypeChange(SAFE, f"convert {change}")
    if old.kind in ("integer", "decimal") and new.kind == "string":
        return TypeChange(NEEDS_DATA, f"convert {change}", _fits_length(new.length))
    if old.kind == "boolean" and new.kind == "integer":
        return TypeChange(SAFE, f"convert {change}")
    if old.kind == "integer" and new.kind == "boolean":
        return TypeChange(NEEDS_DATA, f"convert {change} (only 0 and 1 convert)", _is_zero_or_one)
    return TypeChange(
        DESTRUCTIVE,
        f"cannot convert {change} in place",
        supported=False,
    )


def using_clause(column: str, new_type_sql: str, old: Shape, new: Shape) -> str:
    """PostgreSQL's ``USING`` expression for ALTER COLUMN TYPE (SQLite copies with CAST)."""
    if old.kind in ("string", "text") and new.kind in ("integer", "decimal"):
        return f"CAST(trim({column}) AS {new_type_sql})"
    if old.kind == "integer" and new.kind == "boolean":
        return f"({column} <> 0)"
    return f"CAST({column} AS {new_type_sql})"


def _integer_digits(shape: Shape) -> int:
    return (shape.precision or 0) - (shape.scale or 0)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _fits_length(length: int) -> Callable[[Any], bool]:
    return lambda value: len(_as_text(value)) <= length


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(_as_text(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _fits_integer(bits: int) -> Callable[[Any], bool]:
    low, high = INT_RANGES[bits]

    def accepts(value: Any) -> bool:
        if isinstance(value, str) and not _INTEGER_TEXT.match(value):
            return False
        number = _as_decimal(value)
        return number is not None and number == number.to_integral_value() and low <= number <= high

    return accepts


def _fits_decimal(new: Shape) -> Callable[[Any], bool]:
    def accepts(value: Any) -> bool:
        number = _as_decimal(value)
        if number is None:
            return False
        if new.precision is None:
            return True
        scale = new.scale or 0
        try:
            # Digits after the point beyond the new scale would be rounded away.
            if number != number.quantize(Decimal(1).scaleb(-scale)):
                return False
        except InvalidOperation:  # more digits than any decimal column holds
            return False
        return len(str(abs(int(number)))) <= new.precision - scale or int(number) == 0

    return accepts


def _is_zero_or_one(value: Any) -> bool:
    return value in (0, 1)
