"""Per-step field permissions: which fields a record's current approval step lets its
approvers edit, and which it hides; for a plain workflow, the fields its state allows.

Screens and the records stage ask ``step_fields`` for the record they show or save. It
reads the step from the flow instance's own definition, so it follows the flow version
the record started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from formwork.metadata.model import App, Workflow
from formwork.workflow.approval import restore


@dataclass(frozen=True)
class StepFields:
    """``locked``: the record is under review (only ``editable`` may change);
    ``hidden``: fields not shown at this step."""

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
    if flow is None or status != "pending":
        return StepFields(locked=False)
    instance = tables["fw_flow_instance"]
    row = conn.execute(
        sa.select(instance.c.definition, instance.c.step_index)
        .where(instance.c.entity == entity, instance.c.record_id == record_id, instance.c.state == "running")
        .order_by(instance.c.id.desc())
        .limit(1)
    ).first()
    if row is None or row.step_index is None:
        return StepFields(locked=True)
    step = restore(row.definition).steps[row.step_index]
    return StepFields(locked=True, editable=step.editable, hidden=step.hidden)
