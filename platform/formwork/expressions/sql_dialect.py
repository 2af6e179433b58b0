"""The few SQL constructs that SQLite and PostgreSQL spell differently; nothing else knows dialects.

Each construct renders the PostgreSQL spelling by default and the SQLite one
for "sqlite", decided by SQLAlchemy when the statement is compiled.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class DayOf(FunctionElement):
    """The calendar day of a date or timestamp."""

    type = sa.Date()
    name = "fw_day_of"
    inherit_cache = True


class AddDays(FunctionElement):
    """A date moved by a whole number of days (negative moves back)."""

    type = sa.Date()
    name = "fw_add_days"
    inherit_cache = True


class DaysBetween(FunctionElement):
    """Whole days from the first date to the second."""

    type = sa.Integer()
    name = "fw_days_between"
    inherit_cache = True


class ContainsText(FunctionElement):
    """True when the second text occurs in the first (case sensitive, no wildcards)."""

    type = sa.Boolean()
    name = "fw_contains"
    inherit_cache = True


class Divide(FunctionElement):
    """Division that never truncates integers and gives NULL when dividing by zero."""

    type = sa.Numeric()
    name = "fw_divide"
    inherit_cache = True


def _args(element: FunctionElement, compiler: Any, **kw: Any) -> list[str]:
    return [compiler.process(arg, **kw) for arg in element.clauses]


@compiles(DayOf)
def _day_of(element: DayOf, compiler: Any, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"CAST({value} AS DATE)"


@compiles(DayOf, "sqlite")
def _day_of_sqlite(element: DayOf, compiler: Any, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"date({value})"


@compiles(AddDays)
def _add_days(element: AddDays, compiler: Any, **kw: Any) -> str:
    value, days = _args(element, compiler, **kw)
    return f"(CAST({value} AS DATE) + CAST({days} AS INTEGER))"


@compiles(AddDays, "sqlite")
def _add_days_sqlite(element: AddDays, compiler: Any, **kw: Any) -> str:
    value, days = _args(element, compiler, **kw)
    return f"date({value}, CAST({days} AS TEXT) || ' days')"


@compiles(DaysBetween)
def _days_between(element: DaysBetween, compiler: Any, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"(CAST({end} AS DATE) - CAST({start} AS DATE))"


@compiles(DaysBetween, "sqlite")
def _days_between_sqlite(element: DaysBetween, compiler: Any, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"CAST(julianday(date({end})) - julianday(date({start})) AS INTEGER)"


@compiles(ContainsText)
def _contains(element: ContainsText, compiler: Any, **kw: Any) -> str:
    text, part = _args(element, compiler, **kw)
    return f"(strpos({text}, {part}) > 0)"


@compiles(ContainsText, "sqlite")
def _contains_sqlite(element: ContainsText, compiler: Any, **kw: Any) -> str:
    text, part = _args(element, compiler, **kw)
    return f"(instr({text}, {part}) > 0)"


@compiles(Divide)
def _divide(element: Divide, compiler: Any, **kw: Any) -> str:
    left, right = _args(element, compiler, **kw)
    return f"(CAST({left} AS NUMERIC) / NULLIF({right}, 0))"


@compiles(Divide, "sqlite")
def _divide_sqlite(element: Divide, compiler: Any, **kw: Any) -> str:
    left, right = _args(element, compiler, **kw)
    return f"(CAST({left} AS REAL) / NULLIF({right}, 0))"


class UtcWallTime(FunctionElement):
    """A timestamp with time zone as the UTC wall-clock time, so days and years are UTC ones
    whatever the session's time zone; SQLite stores UTC wall-clock times already."""

    type = sa.DateTime()
    name = "fw_utc_wall_time"
    inherit_cache = True


@compiles(UtcWallTime)
def _utc_wall_time(element: UtcWallTime, compiler: Any, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"({value} AT TIME ZONE 'UTC')"


@compiles(UtcWallTime, "sqlite")
def _utc_wall_time_sqlite(element: UtcWallTime, compiler: Any, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return value


class SecondsBetween(FunctionElement):
    """Seconds from the first timestamp to the second (with fractions)."""

    type = sa.Float()
    name = "fw_seconds_between"
    inherit_cache = True


@compiles(SecondsBetween)
def _seconds_between(element: SecondsBetween, compiler: Any, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


@compiles(SecondsBetween, "sqlite")
def _seconds_between_sqlite(element: SecondsBetween, compiler: Any, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"
