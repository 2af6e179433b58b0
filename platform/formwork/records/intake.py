"""The first step of every write: reading the caller's values.

Refuses system fields, ``status`` outside the workflow, read-only fields from users and
unknown fields, and converts every value to its field's type. All problems are
collected, each on its own field path, and the fields that failed are remembered so
later rules do not report them twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from formwork.metadata.model import (
    APPROVAL_STATUSES,
    CHILD_FIELDS,
    STATUS_FIELD,
    SYSTEM_FIELDS,
    App,
    Entity,
    Workflow,
)
from formwork.problems import did_you_mean
from formwork.records.coerce import WrongType, coerce_id, coerce_value
from formwork.records.errors import FieldError

# Channels where a person types the values: read-only fields are refused there.
USER_CHANNELS = frozenset({"api", "screen"})
# The only channel that may set a record's status.
WORKFLOW_CHANNEL = "workflow"
# Key of a child row that names an existing row to keep and update.
ROW_ID = "id"
READ_ONLY_FOR_YOU = "is read-only for you"


@dataclass
class Intake:
    """Typed input: parent values, rows per table field, the problems and the bad paths."""

    values: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)
    bad: set[str] = field(default_factory=set)

    def refuse(self, path: str, code: str, message: str) -> None:
        """Record a problem with ``path``; later rules skip that path."""
        self.errors.append(FieldError(path, code, message))
        self.bad.add(path)


def is_computed(entity: Entity, name: str) -> bool:
    """True for a field the save computes (``compute`` or ``compute_hook``)."""
    fld = entity.fields.get(name)
    return fld is not None and (fld.compute is not None or fld.compute_hook is not None)


def statuses(app: App, entity: Entity) -> tuple[str, ...]:
    """The states a record of ``entity`` may be in: its workflow's, or an approval's."""
    flow = app.flow_for(entity.name)
    if isinstance(flow, Workflow):
        return flow.states
    return APPROVAL_STATUSES


def _key_problem(entity: Entity, key: str, channel: str, in_row: bool) -> tuple[str, str] | None:
    """(code, message) when ``key`` may not be written by the caller, else None."""
    if key in SYSTEM_FIELDS or key in CHILD_FIELDS:
        if in_row and key == ROW_ID:
            return None
        return "system_field", "is set by the system and cannot be written"
    if key == STATUS_FIELD and entity.has_status and STATUS_FIELD not in entity.fields:
        if channel == WORKFLOW_CHANNEL:
            return None
        return "status_field", "is changed only by the workflow's actions"
    if key not in entity.fields:
        hint = did_you_mean(key, list(entity.fields))
        suffix = f" ({hint})" if hint else ""
        return "unknown_field", f"is not a field of {entity.name}{suffix}"
    return None


def read_values(
    app: App,
    entity: Entity,
    values: Mapping[str, Any],
    channel: str,
    old: Mapping[str, Any] | None,
    intake: Intake | None = None,
    prefix: str = "",
    in_row: bool = False,
    hidden: frozenset[str] = frozenset(),
    locked: frozenset[str] = frozenset(),
) -> Intake:
    """Check and convert ``values`` for ``entity``; ``old`` is the stored record (None on create).

    Values of computed fields are dropped (they are always recomputed). Table fields take
    a list of row mappings, read recursively with paths like ``lines[2].quantity``.
    ``hidden`` and ``locked`` are the fields the actor's permissions hide or keep
    read-only: a hidden field given is refused, a locked one when its value changes."""
    intake = intake if intake is not None else Intake()
    for key, raw in values.items():
        key = str(key)
        path = f"{prefix}{key}"
        problem = _key_problem(entity, key, channel, in_row)
        if problem is None and key in hidden:
            problem = "hidden", "is hidden from you and cannot be written"
        if problem is not None:
            intake.refuse(path, *problem)
            continue
        if key == STATUS_FIELD and key not in entity.fields:
            states = statuses(app, entity)
            if raw not in states:
                intake.refuse(path, "choice", "must be one of: " + ", ".join(states))
                continue
        if key in (ROW_ID, STATUS_FIELD) and key not in entity.fields:
            intake.values[key] = raw
            continue
        fld = entity.fields[key]
        if is_computed(entity, key):
            continue
        if fld.type == "table":
            rows = _read_rows(app, fld.entity or "", raw, channel, intake, path)
            if key in locked and not _same_rows(rows, old.get(key) if old is not None else None):
                intake.refuse(path, "read_only", READ_ONLY_FOR_YOU)
                continue
            intake.rows[key] = rows
            continue
        try:
            typed = coerce_value(fld, raw)
        except WrongType as wrong:
            intake.refuse(path, "type", wrong.message)
            continue
        before = old.get(key) if old is not None else None
        # child rows are not compared: a row's stored values are matched only when saving
        if fld.read_only and not in_row and channel in USER_CHANNELS and typed != before:
            intake.refuse(path, "read_only", "is read-only")
            continue
        if key in locked and typed != before:
            intake.refuse(path, "read_only", READ_ONLY_FOR_YOU)
            continue
        intake.values[key] = typed
    return intake


def _read_rows(app: App, child_name: str, raw: Any, channel: str, intake: Intake, path: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list | tuple) or not all(isinstance(row, Mapping) for row in raw):
        intake.refuse(path, "type", "must be a list of rows")
        return []
    child = app.entity(child_name)
    rows: list[dict[str, Any]] = []
    for index, row in enumerate(raw):
        row_intake = read_values(app, child, row, channel, None, Intake(), f"{path}[{index}].", in_row=True)
        intake.errors.extend(row_intake.errors)
        intake.bad |= row_intake.bad
        if ROW_ID in row_intake.values:
            try:
                row_intake.values[ROW_ID] = coerce_id(row_intake.values[ROW_ID])
            except WrongType:
                intake.refuse(f"{path}[{index}].id", "type", "must be the id of a row of this record")
                row_intake.values.pop(ROW_ID)
        rows.append(row_intake.values)
    return rows


def _same_rows(rows: list[dict[str, Any]], stored: list[dict[str, Any]] | None) -> bool:
    """True when ``rows`` (typed input) name exactly the stored rows, in order, with the
    values they have: a form sending a read-only table back unchanged."""
    stored = stored or []
    if len(rows) != len(stored):
        return False
    return all(row.get(ROW_ID) == old["id"] and all(old.get(k) == v for k, v in row.items()) for row, old in zip(rows, stored, strict=True))
