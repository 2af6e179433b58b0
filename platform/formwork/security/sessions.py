"""Login sessions, kept in the database so any web process can check or end them.

The browser's cookie carries a random session id; ``fw_session`` keeps its sha256, the user
and the expiry. Logout deletes the row, so a copied cookie stops working at once; a user
who is deactivated is refused on the next request (``accounts.actor_for_session`` checks ``active``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

SESSION_LIFETIME = timedelta(hours=12)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start_session(conn: sa.Connection, sessions: sa.Table, user_id: int, now: datetime, remote_addr: str | None = None,
                  lifetime: timedelta = SESSION_LIFETIME) -> str:
    """A new session for ``user_id``; returns the id to put in the cookie (stored hashed)."""
    session_id = secrets.token_urlsafe(32)
    conn.execute(sa.insert(sessions).values(user_id=user_id, session_hash=_digest(session_id), created_at=now,
                                            expires_at=now + lifetime, remote_addr=(remote_addr or "")[:64] or None))
    # expired rows of anyone are cleared here, so the table stays small without a timer
    conn.execute(sa.delete(sessions).where(sessions.c.expires_at <= now))
    return session_id


def session_digest(session_id: object) -> str | None:
    """The stored hash of a cookie's session id, or None when the value cannot be one."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > 100:
        return None
    return _digest(session_id)


def end_session(conn: sa.Connection, sessions: sa.Table, session_id: str) -> int | None:
    """Delete a session; returns its user id (None when it did not exist)."""
    digest = _digest(session_id)
    user_id = conn.execute(sa.select(sessions.c.user_id).where(sessions.c.session_hash == digest)).scalar()
    conn.execute(sa.delete(sessions).where(sessions.c.session_hash == digest))
    return None if user_id is None else int(user_id)


def end_user_sessions(conn: sa.Connection, sessions: sa.Table, user_id: int) -> None:
    """End every session of a user (deactivation, password change)."""
    conn.execute(sa.delete(sessions).where(sessions.c.user_id == user_id))
