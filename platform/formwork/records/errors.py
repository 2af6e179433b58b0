"""What a write can fail with.

``RecordInvalid`` carries every problem of one save at once, each a ``FieldError`` that
a screen shows next to its field and the REST API returns as JSON. The other exceptions
are single conditions the caller turns into a status code (404, 409, 500).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# The field of an error that concerns the whole record rather than one field.
RECORD = ""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field. ``field`` is a dotted path (``lines[2].quantity`` for a
    child row, counted from 0) or ``""`` for the whole record; ``row`` is the position of
    the record in a ``create_many`` batch (from 0), else None."""

    field: str
    code: str
    message: str
    row: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class RecordInvalid(Exception):
    """The write was refused; nothing was written. ``errors`` lists every problem found."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field or 'record'}: {e.message}" for e in self.errors))


class StaleVersion(Exception):
    """The record changed since the caller read it (HTTP 409). ``current`` is its version now."""

    def __init__(self, entity: str, record_id: int, current: int):
        self.entity = entity
        self.record_id = record_id
        self.current = current
        super().__init__(
            f"{entity} {record_id} was changed by someone else (now version {current}); reload it and try again"
        )


class RecordNotFound(Exception):
    """No record of that entity has that id (or the actor may not see it)."""

    def __init__(self, entity: str, record_id: int):
        self.entity = entity
        self.record_id = record_id
        super().__init__(f"{entity} {record_id} does not exist")


class PermissionDenied(Exception):
    """The actor may not do this (HTTP 403). Raised by a ``RecordPolicy``."""

    def __init__(self, action: str, entity: str, message: str | None = None):
        self.action = action
        self.entity = entity
        super().__init__(message or f"you may not {action} {entity} records")


class PluginFailure(Exception):
    """A plugin hook crashed; the write was rolled back. The traceback is in the log under
    ``error_id``; the user only sees the id, never the traceback."""

    def __init__(self, error_id: str, hook: str):
        self.error_id = error_id
        self.hook = hook
        super().__init__(f"the change was not saved because a plugin failed (error id {error_id})")
