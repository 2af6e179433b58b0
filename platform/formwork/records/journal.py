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

# Types JSON stores as they are: returned at once (most values of a record are these).
PLAIN = frozenset({str, int, float, bool, type(None)})
# The key in ``Table.info`` under which the INSERT of the audit or event table is kept.
INSERT_KEY = "formwork.journal.insert"


def json_safe(value: Any) -> Any:
    """``value`` with decimals, dates and times turned into strings, recursively."""
    if type(value) in PLAIN:
        return value
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


def audit_row(*, entity: str, record_id: int, action: str, channel: str, actor: Actor, at: datetime, changes: dict[str, Any]) -> dict[str, Any]:
    """The columns of one audit row: who did ``action`` on which record, through which channel."""
    return {
        "entity": entity,
        "record_id": record_id,
        "action": action,
        "channel": channel,
        "user_id": actor.user_id,
        "at": at,
        "changes": changes,
    }


def creation_changes(safe_record: dict[str, Any]) -> dict[str, Any]:
    """``changes_between(None, record, list(record))`` from the record already made
    ``json_safe``: every field with a value, from nothing to it."""
    return {name: {"old": None, "new": value} for name, value in safe_record.items() if value is not None}


def event_row(*, entity: str, record_id: int, action: str, at: datetime, payload: dict[str, Any], safe: bool = False) -> dict[str, Any]:
    """The columns of the event ``<entity>.<action>`` (created, updated, deleted), queued for
    delivery; ``safe`` when ``payload`` is ``json_safe`` already."""
    return {
        "entity": entity,
        "record_id": record_id,
        "event": f"{entity}.{action}",
        "payload": payload if safe else json_safe(payload),
        "created_at": at,
        "delivered_at": None,
        "attempts": 0,
    }


def _insert(table: sa.Table) -> sa.Insert:
    """``table.insert()``, built once per table and run with the row as parameters: a
    statement used again finds its compiled form in SQLAlchemy's cache without working out
    its cache key again (``insert().values(...)`` would be a new statement every time)."""
    statement = table.info.get(INSERT_KEY)
    if statement is None:
        statement = table.info[INSERT_KEY] = table.insert()
    return statement


def write_rows(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert audit or event rows (from ``audit_row``/``event_row``) with one statement."""
    if rows:
        conn.execute(_insert(table), rows)


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
    conn.execute(_insert(audit), audit_row(entity=entity, record_id=record_id, action=action, channel=channel, actor=actor, at=at, changes=changes))


def write_event(
    conn: sa.Connection,
    events: sa.Table,
    *,
    entity: str,
    record_id: int,
    action: str,
    at: datetime,
    payload: dict[str, Any],
    safe: bool = False,
) -> None:
    """Queue the event ``<entity>.<action>`` (created, updated, deleted) for delivery;
    ``safe`` when ``payload`` is ``json_safe`` already."""
    conn.execute(_insert(events), event_row(entity=entity, record_id=record_id, action=action, at=at, payload=payload, safe=safe))
