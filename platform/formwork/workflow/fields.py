"""Per-step field permissions: which fields a record's current approval step lets its
approvers edit, and which it hides from them; for a plain workflow, the fields its state
allows.

``StepGuard`` is the records stage's ``FlowGuard``: the app wiring (web and CLI) passes it
to ``RecordService``, which asks it before a person's update or delete and before showing
records. ``step_fields`` says the same for one record without an actor. Both read the step
from the flow instance's own definition, so they follow the flow version the record
started with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import STATUS_FIELD, App, Approval, Workflow
from formwork.records import Actor
from formwork.records.locks import FlowLock
from formwork.workflow.approval import OPEN_TASK_STATES, PENDING, TASK_PENDING

RUNNING = "running"


@dataclass(frozen=True)
class StepFields:
    """``locked``: the record is under review (only ``editable`` may change);
    ``hidden``: fields not shown to the step's approvers."""

    locked: bool
    editable: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()


def step_fields(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], entity: str, record_id: int, status: str | None) -> StepFields:
    """What the record's flow allows on its fields now. Under an approval the record is
    locked while pending, except for the current step's ``editable`` fields; under a
    workflow a state with ``editable`` locks every other field."""
    flow = app.flow_for(entity)
    if isinstance(flow, Workflow):
        if status in flow.editable:
            return StepFields(locked=True, editable=flow.editable[status])
        return StepFields(locked=False)
    if flow is None or status != PENDING:
        return StepFields(locked=False)
    run = _running(conn, tables, entity, record_id)
    if run is None or run.step_index is None:
        return StepFields(locked=True)
    step = run.definition["steps"][run.step_index]
    return StepFields(locked=True, editable=tuple(step.get("editable") or ()), hidden=tuple(step.get("hidden") or ()))


class StepGuard:
    """Locks records under review and hides a step's ``hidden`` fields from its approvers.

    - approval, status ``pending``: every field is locked except the current step's
      ``editable`` ones, which only a person whose task at that step is waiting for them
      may change; the record cannot be deleted;
    - workflow, a state with ``editable``: every other field is locked; the editable ones
      follow the usual rules (roles);
    - hidden: while a record is pending at a step, the step's ``hidden`` fields are left
      out for the people holding an open task at that step."""

    def __init__(self, app: App, tables: Mapping[str, sa.Table]) -> None:
        self.app = app
        self.tables = tables

    def lock(self, conn: sa.Connection, entity: str, record: Mapping[str, Any], actor: Actor) -> FlowLock | None:
        """The lock on ``record`` for ``actor``, or None when its flow locks nothing now."""
        flow = self.app.flow_for(entity)
        status = record.get(STATUS_FIELD)
        if isinstance(flow, Workflow):
            if status in flow.editable:
                return FlowLock(f"state '{status}'", frozenset(flow.editable[status]))
            return None
        if not isinstance(flow, Approval) or status != PENDING:
            return None
        run = _running(conn, self.tables, entity, int(record["id"]))
        if run is None or run.step_index is None:
            return FlowLock("review", may_edit=False, deletable=False)
        step = run.definition["steps"][run.step_index]
        task = self.tables["fw_task"]
        waiting_for_actor = actor.user_id is not None and conn.execute(
            sa.select(task.c.id).where(*_at_step(task, run), task.c.assignee_id == actor.user_id, task.c.state == TASK_PENDING).limit(1)
        ).first() is not None
        where = f"step '{step['name']}'"
        return FlowLock(where, frozenset(step.get("editable") or ()), waiting_for_actor, deletable=False, editors=f"the approvers of {where}")

    def hidden(self, conn: sa.Connection, entity: str, records: Iterable[Mapping[str, Any]], actor: Actor) -> dict[int, frozenset[str]]:
        """record id -> the current step's ``hidden`` fields, for the pending records at
        whose current step ``actor`` holds an open task (one query)."""
        pending = [int(r["id"]) for r in records if r.get(STATUS_FIELD) == PENDING]
        if not pending or actor.user_id is None or not isinstance(self.app.flow_for(entity), Approval):
            return {}
        instance, task = self.tables["fw_flow_instance"], self.tables["fw_task"]
        holds_task = (
            sa.select(task.c.id)
            .where(*_at_step(task, instance.c), task.c.assignee_id == actor.user_id, task.c.state.in_(OPEN_TASK_STATES))
            .exists()
        )
        query = sa.select(instance.c.record_id, instance.c.definition, instance.c.step_index).where(
            instance.c.entity == entity, instance.c.record_id.in_(pending), instance.c.state == RUNNING, holds_task
        )
        found: dict[int, frozenset[str]] = {}
        for row in conn.execute(query):
            hidden = frozenset(row.definition["steps"][row.step_index].get("hidden") or ())
            if hidden:
                found[row.record_id] = hidden
        return found


def _running(conn: sa.Connection, tables: Mapping[str, sa.Table], entity: str, record_id: int) -> sa.Row[Any] | None:
    """The record's running flow instance (id, definition, step index and round), or None."""
    instance = tables["fw_flow_instance"]
    return conn.execute(
        sa.select(instance.c.id, instance.c.definition, instance.c.step_index, instance.c.step_round)
        .where(instance.c.entity == entity, instance.c.record_id == record_id, instance.c.state == RUNNING)
        .order_by(instance.c.id.desc())
        .limit(1)
    ).first()


def _at_step(task: sa.Table, run: Any) -> tuple[sa.ColumnElement[bool], ...]:
    """The approve tasks of the run's current step (this round of it); ``run`` is a row or
    the instance table's columns."""
    return (
        task.c.instance_id == run.id,
        task.c.step_index == run.step_index,
        task.c.step_round == run.step_round,
        task.c.kind == "approve",
    )
