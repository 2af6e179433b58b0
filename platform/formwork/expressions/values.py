"""Runtime values shared by the Python and SQL compilers: date ranges and link ids."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, NamedTuple


class DateRange(NamedTuple):
    """A ``daterange`` parameter: both ends inclusive, either end may be open (None)."""

    start: date | None
    end: date | None


def as_daterange(value: Any) -> DateRange | None:
    """Read a daterange parameter given as DateRange, a (start, end) pair or {start, end} mapping.

    Ends may be dates, datetimes (their day counts) or ISO strings; None means
    open. Returns None when ``value`` itself is None.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        start, end = value.get("start"), value.get("end")
    elif hasattr(value, "start") and hasattr(value, "end"):
        start, end = value.start, value.end
    else:
        start, end = value
    return DateRange(_day(start), _day(end))


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return utc_wall_time(value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def link_id(value: Any) -> Any:
    """The id a link value stands for: linked records may be given as dicts with an ``id``."""
    if isinstance(value, Mapping):
        return value.get("id")
    return value


def as_utc(moment: datetime) -> datetime:
    """``moment`` with a time zone; a naive datetime is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def utc_wall_time(moment: datetime) -> datetime:
    """``moment`` as a naive UTC datetime: the form in which datetimes compare and give days."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
