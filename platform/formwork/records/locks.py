"""The seam where a record's flow locks its fields.

While an approval reviews a record, or a workflow state names the fields editable in it,
people may change only those fields. The workflow stage knows which step a record is at
and who its approvers are; the records stage must not import it (stages depend one way),
so the app wiring passes a ``FlowGuard`` to ``RecordService``, which asks it before a
person's update or delete and before showing records. ``Unlocked`` (the default) locks
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from formwork.records.actor import Actor
from formwork.records.errors import RECORD, FieldError


@dataclass(frozen=True)
class FlowLock:
    """A record locked by its flow. ``where`` names the step or state in messages
    ("step 'manager'"); only ``editable`` fields may change, and only when ``may_edit``
    (for an approval: the actor holds a task waiting at that step); ``deletable`` is
    False while the record is under review."""

    where: str
    editable: frozenset[str] = frozenset()
    may_edit: bool = True
    deletable: bool = True
    editors: str = ""  # who may change the editable fields, for messages ("the approvers of step 'manager'")


class FlowGuard(Protocol):
    """Answers what a record's flow allows now."""

    def lock(self, conn: sa.Connection, entity: str, record: Mapping[str, Any], actor: Actor) -> FlowLock | None:
        """The lock on ``record`` (as stored) for ``actor``, or None when its flow locks nothing."""

    def hidden(self, conn: sa.Connection, entity: str, records: Iterable[Mapping[str, Any]], actor: Actor) -> dict[int, frozenset[str]]:
        """record id -> fields the record's flow hides from ``actor`` now (records left out
        hide nothing)."""


class Unlocked:
    """The default guard: no flow locks anything."""

    def lock(self, conn: sa.Connection, entity: str, record: Mapping[str, Any], actor: Actor) -> FlowLock | None:
        """Nothing is locked."""
        return None

    def hidden(self, conn: sa.Connection, entity: str, records: Iterable[Mapping[str, Any]], actor: Actor) -> dict[int, frozenset[str]]:
        """Nothing is hidden."""
        return {}


def locked_changes(lock: FlowLock, changed: Iterable[str]) -> list[FieldError]:
    """One ``locked`` error per field in ``changed`` that ``lock`` does not let the actor change."""
    errors = []
    for name in changed:
        if name not in lock.editable:
            errors.append(FieldError(name, "locked", f"cannot be changed at {lock.where}: the record is locked"))
        elif not lock.may_edit:
            errors.append(FieldError(name, "locked", f"can be changed at {lock.where} only by {lock.editors}"))
    return errors


def delete_refused(lock: FlowLock) -> FieldError:
    """The error of deleting a record its flow keeps."""
    return FieldError(RECORD, "locked", f"cannot be deleted while it is under review ({lock.where})")
