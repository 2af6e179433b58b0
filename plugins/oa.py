"""OA hooks of the example deployment: leave days.

Hooks are called as ``fn(record: dict, ctx)``; a compute hook returns the field's
value. The full convention is in ``purchasing.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from formwork.plugins import hook


def _date(value: Any) -> dt.date | None:
    """A date field's value (a date, a datetime or an ISO string) as a date."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


@hook("oa.leave_days")
def leave_days(record: dict, ctx: Any) -> Decimal | None:
    """Working days (Monday to Friday) from ``start_date`` to ``end_date``, both included.

    None while a date is missing or the end is before the start; the entity's own
    check reports those cases.
    """
    start, end = _date(record.get("start_date")), _date(record.get("end_date"))
    if start is None or end is None or end < start:
        return None
    total_days = (end - start).days + 1
    full_weeks, rest = divmod(total_days, 7)
    days = full_weeks * 5 + sum(
        1 for offset in range(rest) if (start + dt.timedelta(days=offset)).weekday() < 5
    )
    return Decimal(days)
