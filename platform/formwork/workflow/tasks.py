"""Tasks and the inbox: what waits for a user, what they submitted, handled, or got a copy of.

Each box is one indexed query (``fw_task`` by assignee and state, by decider, or
``fw_flow_instance`` by initiator); the records' titles are read afterwards, one query per
entity shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import App
from formwork.records.coerce import to_utc
from formwork.workflow.approval import TASK_PENDING
from formwork.workflow.errors import ActionInvalid

BOXES = ("waiting", "submitted", "handled", "cc")
# Task states a person reached by their own action (what "handled by me" lists).
HANDLED_STATES = ("approved", "rejected", "transferred", "delegated")


def inbox(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], user_id: int, box: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """The items of one box of ``user_id``'s inbox, newest first. Every item names the
    record's ``entity``, ``record_id`` and ``title``; ``ActionInvalid`` for an unknown box."""
    if box not in BOXES:
        raise ActionInvalid(f"there is no box '{box}' (boxes: {', '.join(BOXES)})", "unknown_box")
    if box == "submitted":
        items = _submitted(conn, tables, user_id, limit, offset)
    else:
        items = _tasks(conn, tables, user_id, box, limit, offset)
    _add_titles(conn, app, tables, items)
    return items


def _tasks(conn: sa.Connection, tables: Mapping[str, sa.Table], user_id: int, box: str, limit: int, offset: int) -> list[dict[str, Any]]:
    task = tables["fw_task"]
    query = sa.select(task)
    if box == "waiting":
        query = query.where(task.c.assignee_id == user_id, task.c.state == TASK_PENDING, task.c.kind == "approve")
    elif box == "handled":
        query = query.where(task.c.decided_by == user_id, task.c.kind == "approve", task.c.state.in_(HANDLED_STATES))
    else:
        query = query.where(task.c.assignee_id == user_id, task.c.kind == "cc")
    query = query.order_by(task.c.id.desc()).limit(limit).offset(offset)
    return [
        {
            "task_id": row["id"],
            "entity": row["entity"],
            "record_id": row["record_id"],
            "flow": row["flow"],
            "step": row["step_name"],
            "state": row["state"],
            "kind": row["kind"],
            "created_at": to_utc(row["created_at"]).isoformat(),
            "decided_at": to_utc(row["decided_at"]).isoformat() if row["decided_at"] else None,
            "comment": row["comment"],
        }
        for row in conn.execute(query).mappings()
    ]


def _submitted(conn: sa.Connection, tables: Mapping[str, sa.Table], user_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    instance = tables["fw_flow_instance"]
    query = (
        sa.select(instance)
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
            "flow": row["flow"],
            "step": row["step_name"],
            "state": row["state"],
            "created_at": to_utc(row["started_at"]).isoformat(),
            "finished_at": to_utc(row["finished_at"]).isoformat() if row["finished_at"] else None,
        }
        for row in conn.execute(query).mappings()
    ]


def _add_titles(conn: sa.Connection, app: App, tables: Mapping[str, sa.Table], items: list[dict[str, Any]]) -> None:
    """Set each item's ``title`` from its record's title field (else ``<entity> <id>``)."""
    wanted: dict[str, set[int]] = {}
    for item in items:
        wanted.setdefault(item["entity"], set()).add(item["record_id"])
    titles: dict[tuple[str, int], str] = {}
    for entity_name, ids in wanted.items():
        entity = app.entities.get(entity_name)
        if entity is None or not entity.title_field or entity.title_field not in entity.fields:
            continue
        table = tables[entity_name]
        rows = conn.execute(sa.select(table.c.id, table.c[entity.title_field]).where(table.c.id.in_(sorted(ids))))
        titles.update({(entity_name, row[0]): str(row[1]) for row in rows if row[1] is not None})
    for item in items:
        item["title"] = titles.get((item["entity"], item["record_id"]), f"{item['entity']} {item['record_id']}")
