"""What ``RecordService.list`` and ``count`` accept: simple filters, sort and paging."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordQuery:
    """A list request from a screen or the REST API.

    ``filters`` maps a field to a value (equality; a list or tuple means "one of"; None means
    "is empty"); strings are converted like form input. ``sort`` holds field names, ``-name``
    for descending (default: id). ``search`` is matched case-insensitively against
    ``search_fields`` (default: the form's list search fields, else the title field).
    """

    filters: Mapping[str, Any] = field(default_factory=dict)
    sort: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0
    search: str | None = None
    search_fields: tuple[str, ...] = ()
