"""Checking a username and password, with throttling and a temporary lockout.

Every attempt is a row of ``fw_login_attempt``, so the count is shared by every web
process. After ``MAX_FAILURES`` failed attempts for one username within ``WINDOW`` (with no
success in between), that username is locked for ``LOCKOUT`` from the last failure: even
the right password is refused until then. Unknown usernames are counted the same way and
get the same message, so a login form does not tell which usernames exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from formwork.records.coerce import to_utc
from formwork.security import audit
from formwork.security.passwords import verify_password
from formwork.security.tables import SecurityTables

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
MAX_USERNAME = 150
WRONG_CREDENTIALS = "wrong username or password"


@dataclass(frozen=True)
class LoginOutcome:
    """``user_id`` on success; otherwise ``message`` says why (and ``locked_until`` when locked)."""

    user_id: int | None
    message: str | None = None
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.user_id is not None


def locked_until(conn: sa.Connection, attempts: sa.Table, username: str, now: datetime) -> datetime | None:
    """When the lockout of ``username`` ends, or None when it is not locked now."""
    last_success = (
        sa.select(sa.func.max(attempts.c.at)).where(attempts.c.username == username, attempts.c.succeeded.is_(True)).scalar_subquery()
    )
    failures = list(conn.execute(
        sa.select(attempts.c.at)
        .where(attempts.c.username == username, attempts.c.succeeded.is_(False), attempts.c.at > now - WINDOW,
               sa.or_(last_success.is_(None), attempts.c.at > last_success))
        .order_by(attempts.c.at.desc())
        .limit(MAX_FAILURES)
    ).scalars())
    if len(failures) < MAX_FAILURES:
        return None
    until = to_utc(failures[0]) + LOCKOUT
    return until if until > now else None


def attempt_login(conn: sa.Connection, users: sa.Table, security: SecurityTables, username: str, password: str, now: datetime,
                  remote_addr: str | None = None) -> LoginOutcome:
    """Check ``username`` / ``password`` and record the attempt and its security event.

    Refused: an empty or over-long username, a wrong password, a deactivated user, and any
    attempt while the username is locked."""
    username = (username or "").strip()
    address = (remote_addr or "")[:64] or None
    if not username or len(username) > MAX_USERNAME:
        verify_password(None, password or "")
        return LoginOutcome(None, WRONG_CREDENTIALS)
    attempts = security.login_attempts
    until = locked_until(conn, attempts, username, now)
    if until is not None:
        audit.record_event(conn, security.events, "login_failed", now, username=username, actor=username, remote_addr=address,
                           detail={"reason": "locked"})
        return LoginOutcome(None, locked_message(until, now), until)
    row = conn.execute(sa.select(users.c.id, users.c.password_hash, users.c.active).where(users.c.username == username)).first()
    matches = verify_password(row.password_hash if row is not None else None, password or "")
    ok = matches and row is not None and row.active is not False
    conn.execute(sa.insert(attempts).values(username=username, at=now, succeeded=ok, remote_addr=address))
    if ok:
        audit.record_event(conn, security.events, "login", now, username=username, actor=username, remote_addr=address)
        return LoginOutcome(int(row.id))
    reason = "deactivated" if matches else "wrong_password" if row is not None else "unknown_user"
    audit.record_event(conn, security.events, "login_failed", now, username=username, actor=username, remote_addr=address,
                       detail={"reason": reason})
    until = locked_until(conn, attempts, username, now)
    if until is not None:
        audit.record_event(conn, security.events, "lockout", now, username=username, actor=username, remote_addr=address,
                           detail={"until": until.isoformat()})
        return LoginOutcome(None, locked_message(until, now), until)
    return LoginOutcome(None, WRONG_CREDENTIALS)


def locked_message(until: datetime, now: datetime) -> str:
    """What a locked-out user reads: how many minutes remain."""
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return f"too many failed logins: try again in {minutes} minute{'s' if minutes != 1 else ''}"
