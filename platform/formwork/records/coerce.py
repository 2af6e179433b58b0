"""Turning input values (JSON, form strings, CSV cells) into the Python type of a field.

Each converter returns the typed value or raises ``WrongType`` with the message a user
reads. Empty input (None, "" or only spaces) means "no value" for every type.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from formwork.metadata.model import Field
from formwork.records.limits import ID_RANGE, decimal_digits

# Python refuses to turn longer digit strings into an int (CVE-2020-10735); a Decimal with
# more digits would take minutes to convert, so it is refused the same way.
MAX_INTEGER_DIGITS = 4300
# Deeper JSON data would exhaust Python's recursion when it is copied and written; real
# data is far shallower.
MAX_JSON_DEPTH = 100
TRUE_WORDS = frozenset({"true", "yes", "y", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "off", "0"})


class WrongType(ValueError):
    """The value cannot be read as the field's type; ``message`` says what is expected."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def is_empty(value: Any) -> bool:
    """True for None, an empty string or a string of spaces: the field has no value."""
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if isinstance(value, str):
        check_text(value)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # more digits than Python turns into text
            raise WrongType("must be text") from None
    if (isinstance(value, float) and math.isfinite(value)) or (isinstance(value, Decimal) and value.is_finite()):
        return str(value)
    raise WrongType("must be text")


def check_text(text: str) -> None:
    """Raise ``WrongType`` for text no database column takes: NUL characters (PostgreSQL
    refuses them) and lone surrogates (not encodable as UTF-8 for either database)."""
    if "\x00" in text:
        raise WrongType("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WrongType("must be valid Unicode text") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise WrongType("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise WrongType("must be a whole number")
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value() and value.adjusted() < MAX_INTEGER_DIGITS:
            return int(value)
        raise WrongType("must be a whole number")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise WrongType("must be a whole number")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise WrongType("must be a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # via str so 0.1 stays 0.1 and not its binary expansion
        number = Decimal(str(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise WrongType("must be a number") from None
    else:
        raise WrongType("must be a number")
    if not number.is_finite():
        raise WrongType("must be a number")
    return number


def fit_decimal(fld: Field, number: Decimal) -> Decimal:
    """``number`` rounded half-up to the decimal places of ``fld``'s column (a computed value);
    raises ``WrongType`` when it is too large to round (far beyond what the column holds)."""
    digits = decimal_digits(fld)
    if digits is None:
        return number
    try:
        return number.quantize(Decimal(1).scaleb(-digits[1]), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise WrongType("must be a number the field can hold") from None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise WrongType("must be true or false")


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise WrongType("must be a date (YYYY-MM-DD)")


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise WrongType("must be a date and time (YYYY-MM-DD HH:MM)") from None
    else:
        raise WrongType("must be a date and time (YYYY-MM-DD HH:MM)")
    try:
        return to_utc(moment)
    except OverflowError:
        # in UTC it falls before year 1 or after year 9999
        raise WrongType("is out of the range of dates and times") from None


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC with its time zone set; a time without a zone is taken as UTC.

    SQLite keeps no zone, PostgreSQL converts to the session's: both are read back and
    handed out in UTC, so the same record looks the same on either engine."""
    if moment.tzinfo is UTC:
        return moment  # PostgreSQL sessions run in UTC (storage.make_engine): the usual case
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def coerce_id(value: Any) -> int:
    """A record id from an int, a numeric string or a mapping with ``id``; raises ``WrongType``,
    also for a number no id column holds (no record has it, and the database would refuse it)."""
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    try:
        number = _integer(value)
    except WrongType:
        raise WrongType("must be the id of a record") from None
    low, high = ID_RANGE
    if not low <= number <= high:
        raise WrongType("must be the id of a record")
    return number


def _json(value: Any) -> Any:
    strings = _json_strings(value)
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and PostgreSQL refuses them
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise WrongType("must be JSON data (text, numbers, lists, mappings)") from None
    for text in strings:
        check_text(text)
    return value


def _json_strings(value: Any) -> list[str]:
    """Every string in JSON data, keys included; raises ``WrongType`` for data nested deeper
    than ``MAX_JSON_DEPTH`` (walked without recursion, as the data may be deeper still)."""
    found: list[str] = []
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list | tuple) and depth >= MAX_JSON_DEPTH:
            raise WrongType(f"must be JSON data nested at most {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found += [k for k in item if isinstance(k, str)]
            pending += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list | tuple):
            pending += [(v, depth + 1) for v in item]
    return found


CONVERTERS = {
    "string": _text,
    "text": _text,
    "email": lambda v: _text(v).strip(),
    "choice": lambda v: _text(v).strip(),
    "file": _text,
    "integer": _integer,
    "decimal": _decimal,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "link": coerce_id,
    "json": _json,
}


def coerce_value(field: Field, value: Any) -> Any:
    """``value`` as ``field``'s Python type, None when empty; raises ``WrongType``."""
    if field.type == "json":
        return None if value is None else _json(value)
    if field.type == "boolean" and value is False:
        return False
    if is_empty(value):
        return None
    return CONVERTERS[field.type](value)
