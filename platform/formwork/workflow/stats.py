"""Approval statistics: per flow, per step and per approver, how many tasks wait, were
approved or rejected, how long people take to decide (median and 90th percentile, in
hours) and how many waiting tasks are overdue.

A task is overdue when it has waited longer than its flow's first reminder (``remind:
after``), or a day when the flow sets none. Only decisions people made count towards
the time to decide; rules (skips, timeouts) do not.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from formwork.records.coerce import to_utc
from formwork.workflow.approval import DELEGATE, TASK_APPROVED, TASK_PENDING, TASK_REJECTED

DEFAULT_OVERDUE = timedelta(days=1)


def approval_stats(conn: sa.Connection, tables: Mapping[str, sa.Table], now: datetime, flow: str | None = None) -> dict[str, Any]:
    """``{"flows": [...], "steps": [...], "approvers": [...]}``, each entry with ``pending``,
    ``approved``, ``rejected``, ``overdue``, ``median_hours``, ``p90_hours`` (None without
    decisions); flows also count their runs by outcome."""
    task, instance, users = tables["fw_task"], tables["fw_flow_instance"], tables["fw_user"]
    query = (
        sa.select(
            task.c.flow, task.c.step_name, task.c.assignee_id, task.c.state, task.c.created_at, task.c.decided_at,
            task.c.decided_by, instance.c.definition, users.c.username,
        )
        .select_from(task.join(instance, instance.c.id == task.c.instance_id).join(users, users.c.id == task.c.assignee_id))
        .where(task.c.kind == "approve", task.c.role != DELEGATE)
    )
    runs = sa.select(instance.c.flow, instance.c.state, sa.func.count().label("n")).group_by(instance.c.flow, instance.c.state)
    if flow is not None:
        query = query.where(task.c.flow == flow)
        runs = runs.where(instance.c.flow == flow)
    moment = to_utc(now)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        row["overdue"] = row["state"] == TASK_PENDING and moment - to_utc(row["created_at"]) > _overdue_after(row["definition"])
    flows = _grouped(rows, lambda r: (r["flow"],), ("flow",))
    outcomes: dict[str, dict[str, int]] = {}
    for row in conn.execute(runs):
        outcomes.setdefault(row.flow, {})[row.state] = int(row.n)
    for entry in flows:
        entry["runs"] = outcomes.get(entry["flow"], {})
    return {
        "flows": flows,
        "steps": _grouped(rows, lambda r: (r["flow"], r["step_name"]), ("flow", "step")),
        "approvers": _grouped(rows, lambda r: (r["flow"], r["username"]), ("flow", "approver")),
    }


def _overdue_after(definition: Mapping[str, Any]) -> timedelta:
    remind = definition.get("remind_after") if definition else None
    return timedelta(seconds=remind["seconds"]) if remind else DEFAULT_OVERDUE


def _grouped(rows: Iterable[dict[str, Any]], key: Any, names: tuple[str, ...]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return [{**dict(zip(names, k, strict=True)), **_figures(members)} for k, members in sorted(groups.items(), key=lambda item: tuple(str(x) for x in item[0]))]


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    hours = sorted(
        (to_utc(r["decided_at"]) - to_utc(r["created_at"])).total_seconds() / 3600
        for r in rows
        if r["state"] in (TASK_APPROVED, TASK_REJECTED) and r["decided_by"] is not None and r["decided_at"] is not None
    )
    return {
        "pending": sum(1 for r in rows if r["state"] == TASK_PENDING),
        "approved": sum(1 for r in rows if r["state"] == TASK_APPROVED),
        "rejected": sum(1 for r in rows if r["state"] == TASK_REJECTED),
        "overdue": sum(1 for r in rows if r["overdue"]),
        "decisions": len(hours),
        "median_hours": round(statistics.median(hours), 2) if hours else None,
        "p90_hours": round(_percentile(hours, 0.9), 2) if hours else None,
    }


def _percentile(values: list[float], share: float) -> float:
    """Linear interpolation between the closest ranks of sorted ``values``."""
    position = (len(values) - 1) * share
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)
