"""Flow versions: records in flight keep the definition they started with.

Each flow instance stores its approval as it was at submission (``definition``), so a
metadata change never breaks a record under review: it finishes on its old steps, and the
next submission uses the new ones. ``in_flight_report`` tells an admin, before migrating,
which running records sit on a step the new metadata no longer has (or whose flow is
gone) and how they will be carried on; ``formwork plan`` can print ``describe`` of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from formwork.metadata.model import App


@dataclass(frozen=True)
class InFlight:
    """A running record whose current step differs from the metadata now."""

    entity: str
    record_id: int
    flow: str
    step: str | None
    reason: str  # step_removed | flow_removed
    mapping: str  # what will happen, in words

    def describe(self) -> str:
        """One line for ``formwork plan``."""
        return f"{self.entity} {self.record_id} ({self.flow}, step {self.step or '-'}): {self.mapping}"


def in_flight_report(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table]) -> list[InFlight]:
    """Running approvals whose current step (or whole flow) is not in ``app`` any more."""
    instance = tables["fw_flow_instance"]
    query = sa.select(instance.c.entity, instance.c.record_id, instance.c.flow, instance.c.step_name).where(instance.c.state == "running").order_by(instance.c.id)
    found = []
    for row in conn.execute(query):
        current = app.approvals.get(row.flow)
        if current is None:
            found.append(InFlight(row.entity, row.record_id, row.flow, row.step_name, "flow_removed",
                                  "the flow is gone from the metadata; the record finishes on the steps it started with"))
        elif row.step_name is not None and row.step_name not in {s.name for s in current.steps}:
            found.append(InFlight(row.entity, row.record_id, row.flow, row.step_name, "step_removed",
                                  f"step '{row.step_name}' is gone from the metadata; the record finishes on the steps it started with, "
                                  "and its next submission follows the new steps"))
    return found
