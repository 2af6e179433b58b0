"""The fixed list of functions an expression may call, with their arity.

Type rules live in the checker; this table is what the parser needs to refuse
unknown functions and wrong argument counts before anything else runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    name: str
    signature: str  # shown in hints and documented in docs/expressions.md
    min_args: int
    max_args: int | None  # None: any number
    aggregate: bool = False  # aggregates values of child rows (or report rows in a measure);
    # len() is not one: on text or a list it is a plain function, on a table field it counts rows


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("today", "today() -> date", 0, 0),
        Function("now", "now() -> datetime", 0, 0),
        Function("len", "len(text | table field | list) -> integer", 1, 1),
        Function("sum", "sum(number per row) -> number", 1, 1, aggregate=True),
        Function("count", "count() or count(value per row) -> integer", 0, 1, aggregate=True),
        Function("avg", "avg(number per row) -> decimal", 1, 1, aggregate=True),
        Function("min", "min(value per row) -> value", 1, 1, aggregate=True),
        Function("max", "max(value per row) -> value", 1, 1, aggregate=True),
        Function("abs", "abs(number) -> number", 1, 1),
        Function("round", "round(number) or round(number, digits) -> number", 1, 2),
        Function("lower", "lower(text) -> text", 1, 1),
        Function("upper", "upper(text) -> text", 1, 1),
        Function("year", "year(date) -> integer", 1, 1),
        Function("month", "month(date) -> integer", 1, 1),
        Function("day", "day(date) -> integer", 1, 1),
        Function("coalesce", "coalesce(a, b, ...) -> first value that is not None", 1, None),
        Function("contains", "contains(text, part) -> boolean", 2, 2),
        Function("startswith", "startswith(text, prefix) -> boolean", 2, 2),
        Function("days_between", "days_between(start, end) -> integer (end - start in days)", 2, 2),
        Function("date", "date('2024-01-31') -> date", 1, 1),
    )
}
