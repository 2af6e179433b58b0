"""What a field's column can hold, read from the column storage makes for it.

Validation refuses a value the database would refuse, with a field error instead of a
database error. The limits are not repeated here: they are read from
``storage.tables.column_type``, so a change of a column type changes the check with it.
Only the ranges of the integer column types are ours: SQLAlchemy does not state them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import Field
from formwork.storage.tables import column_type

# Ranges of the integer column types on PostgreSQL (SQLite stores any of them in 64 bits);
# the narrowest type first, because BigInteger and SmallInteger are subclasses of Integer.
INTEGER_RANGES: tuple[tuple[type[sa.types.TypeEngine], tuple[int, int]], ...] = (
    (sa.SmallInteger, (-(2**15), 2**15 - 1)),
    (sa.BigInteger, (-(2**63), 2**63 - 1)),
    (sa.Integer, (-(2**31), 2**31 - 1)),
)
# Record ids and versions live in ``sa.Integer`` columns (the system columns of every table).
ID_RANGE = dict(INTEGER_RANGES)[sa.Integer]


def integer_range(column: sa.types.TypeEngine) -> tuple[int, int] | None:
    """The (lowest, highest) value of an integer column type, None for other types."""
    for kind, bounds in INTEGER_RANGES:
        if isinstance(column, kind):
            return bounds
    return None


def text_length(fld: Field) -> int | None:
    """The most characters the column of text-like ``fld`` holds (None: unlimited or not text)."""
    if fld.type in ("table", "json"):
        return None
    column = column_type(fld)
    return column.length if isinstance(column, sa.String) else None


def field_range(fld: Field) -> tuple[int, int] | None:
    """The (lowest, highest) whole number the column of integer ``fld`` holds."""
    if fld.type != "integer":
        return None
    return integer_range(column_type(fld))


def decimal_digits(fld: Field) -> tuple[int, int] | None:
    """(precision, scale) of the column of decimal ``fld``: the digits it holds in all, and
    after the decimal point."""
    if fld.type != "decimal":
        return None
    column = column_type(fld)
    if not isinstance(column, sa.Numeric) or column.precision is None:
        return None
    return column.precision, column.scale or 0


def column_problems(column: sa.Column[Any], value: Any) -> list[tuple[str, str]]:
    """(code, message) of each reason ``column`` cannot hold typed ``value``: empty in a NOT
    NULL column, text too long, a whole number outside the type's range, too many digits."""
    if value is None:
        return [] if column.nullable else [("required", "is required")]
    kind = column.type
    if isinstance(kind, sa.String) and kind.length is not None and isinstance(value, str) and len(value) > kind.length:
        return [("max_length", f"must be at most {kind.length} characters")]
    bounds = integer_range(kind)
    if bounds is not None and isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
        return [("range", f"must be between {bounds[0]} and {bounds[1]}")]
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float) and kind.precision is not None and isinstance(value, Decimal):
        return digit_problems(value, kind.precision, kind.scale or 0)
    return []


def digit_problems(value: Decimal, precision: int, scale: int) -> list[tuple[str, str]]:
    """(code, message) when ``value`` has more decimal places than ``scale`` or more digits
    before the point than ``precision - scale``."""
    # Counted on the digits themselves: quantize and int() are slow or fail for huge exponents.
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return []
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    places = max(0, -(exponent + trailing))
    if places > scale:
        return [("digits", f"must have at most {scale} decimal places")]
    whole = max(0, len(digits) + exponent)
    if whole > precision - scale:
        return [("digits", f"must have at most {precision - scale} digits before the decimal point")]
    return []
