"""A record's timeline: every workflow action on it, in order (who, what, when, comment,
on behalf of whom). Rows are written in the transaction of the action they describe."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from formwork.records.coerce import to_utc


def write_entry(
    conn: sa.Connection,
    table: sa.Table,
    *,
    entity: str,
    record_id: int,
    instance_id: int | None,
    at: datetime,
    user_id: int | None,
    action: str,
    step_name: str | None = None,
    comment: str | None = None,
    on_behalf_of: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one entry to the record's timeline."""
    conn.execute(
        table.insert().values(
            entity=entity,
            record_id=record_id,
            instance_id=instance_id,
            at=at,
            user_id=user_id,
            on_behalf_of=on_behalf_of,
            action=action,
            step_name=step_name,
            comment=comment,
            details=dict(details) if details else None,
        )
    )


def timeline_of(conn: sa.Connection, tables: Mapping[str, sa.Table], entity: str, record_id: int) -> list[dict[str, Any]]:
    """The record's timeline, oldest first; each entry names its user and the user it acted
    for by username (``system`` for the worker and automatic rules)."""
    timeline = tables["fw_timeline"]
    users = tables["fw_user"]
    actor = users.alias("actor")
    principal = users.alias("principal")
    query = (
        sa.select(timeline, actor.c.username.label("username"), principal.c.username.label("on_behalf_of_username"))
        .select_from(
            timeline.outerjoin(actor, actor.c.id == timeline.c.user_id).outerjoin(principal, principal.c.id == timeline.c.on_behalf_of)
        )
        .where(timeline.c.entity == entity, timeline.c.record_id == record_id)
        .order_by(timeline.c.id)
    )
    entries = []
    for row in conn.execute(query).mappings():
        entries.append(
            {
                "at": to_utc(row["at"]).isoformat(),
                "action": row["action"],
                "step": row["step_name"],
                "user": row["username"] or ("system" if row["user_id"] is None else None),
                "user_id": row["user_id"],
                "on_behalf_of": row["on_behalf_of_username"],
                "comment": row["comment"],
                "details": row["details"] or {},
                "instance_id": row["instance_id"],
            }
        )
    return entries
