"""Approval statistics: per flow, per step and per approver, how many tasks wait, were
approved or rejected, how long people take to decide (median and 90th percentile, in
hours) and how many waiting tasks are overdue.

A task is overdue when it has waited longer than its flow's first reminder (``remind:
after``, read from the run's own copy of the approval), or a day when the flow sets none.
Only decisions people made count towards the time to decide; rules (skips, timeouts) do
not.

The database does the work: per grouping, one ``GROUP BY`` query counts, and one query
ranks the decision times with window functions (``row_number`` and ``count`` over the
group) and picks the two ranks around each percentile, interpolated linearly as
PostgreSQL's ``percentile_cont`` does. The same SQL runs on SQLite and PostgreSQL; only
the hours between two timestamps are spelled per engine (``SecondsBetween``). Python
merges the two answers of each group and rounds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from formwork.expressions.sql_dialect import SecondsBetween
from formwork.records.coerce import to_utc
from formwork.workflow.approval import DELEGATE, TASK_APPROVED, TASK_PENDING, TASK_REJECTED

DEFAULT_OVERDUE = timedelta(days=1)
# (name, share as numerator and denominator) of the percentiles reported: whole numbers, so
# the rank below a percentile is an integer division, the same on both engines
PERCENTILES = (("median_hours", 1, 2), ("p90_hours", 9, 10))
# (output key, group columns) of each grouping
GROUPINGS = (("flows", ("flow",)), ("steps", ("flow", "step")), ("approvers", ("flow", "approver")))


def approval_stats(conn: sa.Connection, tables: Mapping[str, sa.Table], now: datetime, flow: str | None = None,
                   scope: Mapping[str, sa.ColumnElement[bool]] | None = None) -> dict[str, Any]:
    """``{"flows": [...], "steps": [...], "approvers": [...]}``, each entry with ``pending``,
    ``approved``, ``rejected``, ``overdue``, ``decisions``, ``median_hours``, ``p90_hours``
    (None without decisions); flows also count their runs by outcome.

    ``scope`` (None: everything) maps the flows to count to a condition on their runs
    (``fw_flow_instance`` columns, e.g. the records a user may report on); flows left out
    count nothing."""
    restriction = _scoped(tables["fw_flow_instance"], scope)
    tasks = _task_figures(tables, to_utc(now), flow, restriction)
    found = {key: _grouped(conn, tasks, names) for key, names in GROUPINGS}
    instance = tables["fw_flow_instance"]
    runs = sa.select(instance.c.flow, instance.c.state, sa.func.count().label("n")).group_by(instance.c.flow, instance.c.state)
    if flow is not None:
        runs = runs.where(instance.c.flow == flow)
    if restriction is not None:
        runs = runs.where(restriction)
    outcomes: dict[str, dict[str, int]] = {}
    for row in conn.execute(runs):
        outcomes.setdefault(row.flow, {})[row.state] = int(row.n)
    for entry in found["flows"]:
        entry["runs"] = outcomes.get(entry["flow"], {})
    return found


def _scoped(instance: sa.Table, scope: Mapping[str, sa.ColumnElement[bool]] | None) -> sa.ColumnElement[bool] | None:
    """The runs ``scope`` lets count: of its flows, those meeting the flow's condition."""
    if scope is None:
        return None
    if not scope:
        return sa.false()
    return sa.or_(*[sa.and_(instance.c.flow == name, condition) for name, condition in sorted(scope.items())])


def _task_figures(tables: Mapping[str, sa.Table], now: datetime, flow: str | None,
                  restriction: sa.ColumnElement[bool] | None = None) -> sa.Subquery:
    """One row per approve task: its flow, step, approver, state, whether it is overdue
    (0/1) and the hours a person took to decide it (NULL when no person decided)."""
    task, instance, users = tables["fw_task"], tables["fw_flow_instance"], tables["fw_user"]
    remind_seconds = instance.c.definition[("remind_after", "seconds")].as_integer()
    overdue_after = sa.func.coalesce(remind_seconds, int(DEFAULT_OVERDUE.total_seconds()))
    waited = SecondsBetween(task.c.created_at, sa.literal(now, sa.DateTime(timezone=True)))
    decided_by_person = sa.and_(task.c.state.in_((TASK_APPROVED, TASK_REJECTED)), task.c.decided_by.is_not(None), task.c.decided_at.is_not(None))
    query = (
        sa.select(
            task.c.flow.label("flow"),
            task.c.step_name.label("step"),
            users.c.username.label("approver"),
            task.c.state.label("state"),
            sa.case((sa.and_(task.c.state == TASK_PENDING, waited > overdue_after), 1), else_=0).label("overdue"),
            sa.case((decided_by_person, SecondsBetween(task.c.created_at, task.c.decided_at) / 3600.0), else_=None).label("hours"),
        )
        .select_from(task.join(instance, instance.c.id == task.c.instance_id).join(users, users.c.id == task.c.assignee_id))
        .where(task.c.kind == "approve", task.c.role != DELEGATE)
    )
    if flow is not None:
        query = query.where(task.c.flow == flow)
    if restriction is not None:
        query = query.where(restriction)
    return query.subquery("tasks")


def _grouped(conn: sa.Connection, tasks: sa.Subquery, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The figures of each group of ``tasks`` by the columns ``names``, in key order."""
    keys = [tasks.c[name] for name in names]
    counts = sa.select(
        *keys,
        sa.func.sum(sa.case((tasks.c.state == TASK_PENDING, 1), else_=0)).label("pending"),
        sa.func.sum(sa.case((tasks.c.state == TASK_APPROVED, 1), else_=0)).label("approved"),
        sa.func.sum(sa.case((tasks.c.state == TASK_REJECTED, 1), else_=0)).label("rejected"),
        sa.func.sum(tasks.c.overdue).label("overdue"),
        sa.func.count(tasks.c.hours).label("decisions"),
    ).group_by(*keys)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in conn.execute(counts).mappings():
        key = tuple(row[name] for name in names)
        groups[key] = {
            **dict(zip(names, key, strict=True)),
            **{figure: int(row[figure] or 0) for figure in ("pending", "approved", "rejected", "overdue", "decisions")},
            **dict.fromkeys(name for name, _num, _den in PERCENTILES),
        }
    for row in conn.execute(_percentiles(tasks, names)).mappings():
        entry = groups[tuple(row[name] for name in names)]
        for name, _num, _den in PERCENTILES:
            entry[name] = round(float(row[name]), 2)
    return [groups[key] for key in sorted(groups, key=lambda k: tuple(str(x) for x in k))]


def _percentiles(tasks: sa.Subquery, names: tuple[str, ...]) -> sa.Select[Any]:
    """Per group with decisions, each of ``PERCENTILES`` of the decision hours: at position
    p = (n - 1) * share (counted from 0) of the sorted values, the value at rank floor(p) plus the fraction
    of p times the step to the next rank (the last value when there is none)."""
    keys = [tasks.c[name] for name in names]
    ranked = (
        sa.select(
            *keys,
            tasks.c.hours,
            sa.func.row_number().over(partition_by=keys, order_by=tasks.c.hours).label("rank"),
            sa.func.count().over(partition_by=keys).label("n"),
        )
        .where(tasks.c.hours.is_not(None))
        .subquery("ranked")
    )
    group = [ranked.c[name] for name in names]
    figures = []
    for name, numerator, denominator in PERCENTILES:
        scaled = (ranked.c.n - 1) * numerator
        low_rank = scaled // denominator  # floor((n - 1) * share)
        fraction = sa.func.max((scaled % denominator) * 1.0 / denominator)
        low = sa.func.max(sa.case((ranked.c.rank == low_rank + 1, ranked.c.hours)))
        high = sa.func.coalesce(sa.func.max(sa.case((ranked.c.rank == low_rank + 2, ranked.c.hours))), low)
        figures.append((low + (high - low) * fraction).label(name))
    return sa.select(*group, *figures).group_by(*group)
