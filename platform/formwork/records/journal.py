"""The audit trail (``fw_audit``) and the outgoing events (``fw_event``) of every write.

Both rows are written in the transaction of the write itself, so a rolled-back write
leaves neither. Values are stored as JSON: decimals as strings (no precision lost),
dates and times in ISO format.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from formwork.records.actor import Actor


def json_safe(value: Any) -> Any:
    """``value`` with decimals, dates and times turned into strings, recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def changes_between(old: dict[str, Any] | None, new: dict[str, Any] | None, fields: list[str]) -> dict[str, Any]:
    """``{field: {"old": ..., "new": ...}}`` for each of ``fields`` whose value differs.

    A create has no ``old``, a delete no ``new``: then every field with a value is listed,
    so the audit row of a delete is a full snapshot of the record."""
    changes: dict[str, Any] = {}
    for name in fields:
        before = None if old is None else old.get(name)
        after = None if new is None else new.get(name)
        if before != after:
            changes[name] = {"old": json_safe(before), "new": json_safe(after)}
    return changes


def write_audit(
    conn: sa.Connection,
    audit: sa.Table,
    *,
    entity: str,
    record_id: int,
    action: str,
    channel: str,
    actor: Actor,
    at: datetime,
    changes: dict[str, Any],
) -> None:
    """Append one audit row: who did ``action`` on which record, through which channel."""
    conn.execute(
        audit.insert().values(
            entity=entity,
            record_id=record_id,
            action=action,
            channel=channel,
            user_id=actor.user_id,
            at=at,
            changes=changes,
        )
    )


def write_event(
    conn: sa.Connection,
    events: sa.Table,
    *,
    entity: str,
    record_id: int,
    action: str,
    at: datetime,
    payload: dict[str, Any],
) -> None:
    """Queue the event ``<entity>.<action>`` (created, updated, deleted) for delivery."""
    conn.execute(
        events.insert().values(
            entity=entity,
            record_id=record_id,
            event=f"{entity}.{action}",
            payload=json_safe(payload),
            created_at=at,
            delivered_at=None,
            attempts=0,
        )
    )
