"""What ``RecordService.list`` and ``count`` accept: filters, an expression, sort and paging."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Operators of a ``Condition``: comparisons, "one of", text matches and emptiness.
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "startswith", "isnull")


@dataclass(frozen=True)
class Condition:
    """``field`` ``op`` ``value``: one simple filter on a column of the record.

    ``value`` is converted like form input (text from a URL is fine): a list for ``in``,
    true/false for ``isnull``; an empty value with ``eq`` means "is empty", with ``ne``
    "is not empty". ``ne`` matches empty fields too; ``contains`` and ``startswith`` ignore
    case and apply to text fields only."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class RecordQuery:
    """A list request from a screen or the REST API.

    ``filters`` maps a field to a value (equality; a list or tuple means "one of"; None means
    "is empty"); strings are converted like form input. ``conditions`` are further filters
    with an operator; ``expression`` is a condition in the expression language (field paths
    through links allowed), run in SQL. All of them must hold. ``sort`` holds field names,
    ``-name`` for descending; ``id`` always breaks ties. ``search`` is matched
    case-insensitively against ``search_fields`` (default: the form's list search fields,
    else the title field).

    ``after`` is a keyset position: the values of the sort keys and the id (last) of the
    last record of the previous page, as ``keyset_of`` gives them; the list continues after
    it. Empty fields sort after every value (before them, descending), on every database.
    """

    filters: Mapping[str, Any] = field(default_factory=dict)
    sort: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0
    search: str | None = None
    search_fields: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    expression: str | None = None
    after: tuple[Any, ...] | None = None
