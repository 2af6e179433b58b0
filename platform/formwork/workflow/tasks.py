"""Tasks and the inbox: what waits for a user, what they submitted, handled, or got a copy of.

Each box is one indexed query (``fw_task`` by assignee and state, by decider, or
``fw_flow_instance`` by initiator). Tasks and runs carry the record's title from when
they were made, so no box reads the records themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from formwork.records.coerce import to_utc
from formwork.workflow.approval import TASK_PENDING
from formwork.workflow.errors import ActionInvalid

BOXES = ("waiting", "submitted", "handled", "cc")
# Task states a person reached by their own action (what "handled by me" lists).
HANDLED_STATES = ("approved", "rejected", "transferred", "delegated")
_TASK_COLUMNS = ("id", "entity", "record_id", "title", "flow", "step_name", "state", "kind", "created_at", "decided_at", "comment")


def inbox(conn: sa.Connection, tables: Mapping[str, sa.Table], user_id: int, box: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """The items of one box of ``user_id``'s inbox, newest first. Every item names the
    record's ``entity``, ``record_id`` and ``title``; ``ActionInvalid`` for an unknown box."""
    if box not in BOXES:
        raise ActionInvalid(f"there is no box '{box}' (boxes: {', '.join(BOXES)})", "unknown_box")
    if box == "submitted":
        items = _submitted(conn, tables, user_id, limit, offset)
    else:
        items = _tasks(conn, tables, user_id, box, limit, offset)
    return items


@functools.lru_cache(maxsize=64)
def _box_query(task: sa.Table, box: str) -> sa.Select[Any]:
    """The statement of one task box, built once per table (the user and page are bound)."""
    query = sa.select(*[task.c[name] for name in _TASK_COLUMNS])
    user = sa.bindparam("user_id")
    if box == "waiting":
        query = query.where(task.c.assignee_id == user, task.c.state == TASK_PENDING, task.c.kind == "approve")
    elif box == "handled":
        query = query.where(task.c.decided_by == user, task.c.kind == "approve", task.c.state.in_(HANDLED_STATES))
    else:
        query = query.where(task.c.assignee_id == user, task.c.kind == "cc")
    return query.order_by(task.c.id.desc()).limit(sa.bindparam("limit")).offset(sa.bindparam("offset"))


def _tasks(conn: sa.Connection, tables: Mapping[str, sa.Table], user_id: int, box: str, limit: int, offset: int) -> list[dict[str, Any]]:
    rows = conn.execute(_box_query(tables["fw_task"], box), {"user_id": user_id, "limit": limit, "offset": offset})
    return [
        {
            "task_id": task_id,
            "entity": entity,
            "record_id": record_id,
            "title": title or f"{entity} {record_id}",
            "flow": flow,
            "step": step,
            "state": state,
            "kind": kind,
            "created_at": to_utc(created_at).isoformat(),
            "decided_at": to_utc(decided_at).isoformat() if decided_at else None,
            "comment": comment,
        }
        for task_id, entity, record_id, title, flow, step, state, kind, created_at, decided_at, comment in rows
    ]


def _submitted(conn: sa.Connection, tables: Mapping[str, sa.Table], user_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    instance = tables["fw_flow_instance"]
    columns = ("id", "entity", "record_id", "title", "flow", "step_name", "state", "started_at", "finished_at")
    query = (
        sa.select(*[instance.c[name] for name in columns])
        .where(instance.c.initiator_id == user_id)
        .order_by(instance.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        {
            "instance_id": row["id"],
            "entity": row["entity"],
            "record_id": row["record_id"],
            "title": row["title"] or f"{row['entity']} {row['record_id']}",
            "flow": row["flow"],
            "step": row["step_name"],
            "state": row["state"],
            "created_at": to_utc(row["started_at"]).isoformat(),
            "finished_at": to_utc(row["finished_at"]).isoformat() if row["finished_at"] else None,
        }
        for row in conn.execute(query).mappings()
    ]
