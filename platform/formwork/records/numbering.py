"""Document numbers such as ``PR-2026-00042`` from an entity's number pattern.

Each (pattern, period) has one row in ``fw_number_sequence``. A create takes the next
value with a single upsert (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``): the
database increments atomically, so concurrent creates never get the same number and
never fail on the first number of a new period. The row stays locked until the
creating transaction ends, which orders creates of the same pattern and period only;
other entities and all updates do not wait. A rolled-back create gives its number back.
"""

from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from formwork.metadata.model import NumberPattern

TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|#+)\}")
DATE_TOKENS = {
    "YYYY": lambda d: f"{d.year:04d}",
    "YY": lambda d: f"{d.year % 100:02d}",
    "MM": lambda d: f"{d.month:02d}",
    "DD": lambda d: f"{d.day:02d}",
}
# The period key covers the date tokens the pattern shows, so the counter restarts
# when the shown date part changes (a new year for {YYYY}, a new month for {MM}).
PERIOD_PARTS = (("YYYY", "%Y"), ("YY", "%Y"), ("MM", "%m"), ("DD", "%d"))


def period_of(pattern: str, day: date) -> str:
    """The sequence period of ``pattern`` on ``day``: e.g. ``2026`` for ``PR-{YYYY}-{####}``,
    ``2026-11`` when the pattern also shows {MM}; ``-`` when it shows no date."""
    tokens = set(TOKEN.findall(pattern))
    parts: list[str] = []
    for token, fmt in PERIOD_PARTS:
        if token in tokens and day.strftime(fmt) not in parts:
            parts.append(day.strftime(fmt))
    return "-".join(parts) or "-"


def render(pattern: str, day: date, value: int) -> str:
    """``pattern`` with its date tokens filled from ``day`` and ``{###}`` from ``value``."""

    def fill(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("#"):
            return str(value).zfill(len(token))
        return DATE_TOKENS[token](day)

    return TOKEN.sub(fill, pattern)


def next_value(conn: sa.Connection, sequences: sa.Table, name: str, period: str) -> int:
    """Increment and return the counter of (``name``, ``period``), creating it at 1."""
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(sequences).values(name=name, period=period, last_value=1)
    statement = statement.on_conflict_do_update(
        index_elements=[sequences.c.name, sequences.c.period],
        set_={"last_value": sequences.c.last_value + 1},
    ).returning(sequences.c.last_value)
    return int(conn.execute(statement).scalar_one())


def next_number(conn: sa.Connection, sequences: sa.Table, number: NumberPattern, day: date) -> str:
    """The next document number of ``number``'s pattern for the date ``day``."""
    value = next_value(conn, sequences, number.pattern, period_of(number.pattern, day))
    return render(number.pattern, day, value)
