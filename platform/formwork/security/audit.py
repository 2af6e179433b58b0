"""The security audit log: logins, failed logins, lockouts, tokens, role assignments.

Rows of ``fw_security_event`` are written in the transaction of the change they describe
(a role granted and its event commit together); failed logins are written on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from formwork.records.coerce import to_utc

EVENTS = (
    "login",
    "login_failed",
    "lockout",
    "logout",
    "token_created",
    "token_revoked",
    "role_granted",
    "role_revoked",
    "user_created",
    "user_deactivated",
    "password_changed",
    "password_change_failed",
)


@dataclass(frozen=True)
class SecurityEvent:
    """One row of the security log."""

    id: int
    at: datetime
    event: str
    username: str | None
    actor: str | None
    remote_addr: str | None
    detail: dict[str, Any]


def record_event(conn: sa.Connection, events: sa.Table, event: str, at: datetime, *, username: str | None, actor: str | None,
                 remote_addr: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
    """Write one security event (``event`` is one of ``EVENTS``)."""
    if event not in EVENTS:
        raise ValueError(f"unknown security event {event!r}")
    conn.execute(sa.insert(events).values(at=at, event=event, username=username, actor=actor, remote_addr=remote_addr,
                                          detail=dict(detail or {})))


def read_events(conn: sa.Connection, events: sa.Table, *, username: str | None = None, event: str | None = None,
                limit: int = 100) -> list[SecurityEvent]:
    """The newest events first, optionally of one user (as subject or actor) or one kind."""
    query = sa.select(events).order_by(events.c.id.desc()).limit(limit)
    if username is not None:
        query = query.where(sa.or_(events.c.username == username, events.c.actor == username))
    if event is not None:
        query = query.where(events.c.event == event)
    return [
        SecurityEvent(row.id, to_utc(row.at), row.event, row.username, row.actor, row.remote_addr, dict(row.detail or {}))
        for row in conn.execute(query)
    ]
