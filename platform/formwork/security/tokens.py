"""Personal API tokens: ``Authorization: Bearer fw_...``.

A token is 32 random bytes (URL-safe base64 behind the ``fw_`` prefix). It is shown once,
when created; the database keeps only its sha256, a short prefix for people to recognise it,
the expiry and the revocation time. A token works while it is neither expired nor revoked
and its user is active (``accounts.actor_for_token`` reads token, user and roles in one query on
every request).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from formwork.records.coerce import to_utc

TOKEN_PREFIX = "fw_"
TOKEN_BYTES = 32
# base64url of 32 bytes is 43 characters; anything else is malformed without a database look-up
_TOKEN_SHAPE = re.compile(r"fw_[A-Za-z0-9_-]{43}")
_DURATION = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LAST_USE_PRECISION = timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` is the secret, shown to the user this once."""

    id: int
    token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    """What is stored about a token (never the token itself)."""

    id: int
    name: str | None
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``45m``, ``2w`` as a timedelta; ``ValueError`` with a plain message otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"'{text}' is not a duration: use a number and a unit, like 30d, 12h, 45m or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def token_hash(token: str) -> str:
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(conn: sa.Connection, tokens: sa.Table, user_id: int, now: datetime, expires_in: timedelta | None,
                name: str | None = None) -> IssuedToken:
    """Create a token for ``user_id``; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = now + expires_in if expires_in is not None else None
    token_id = conn.execute(
        sa.insert(tokens).values(user_id=user_id, name=name, token_hash=token_hash(token), prefix=token[:10],
                                 created_at=now, expires_at=expires_at).returning(tokens.c.id)
    ).scalar_one()
    return IssuedToken(int(token_id), token, expires_at)


def well_formed(token: str) -> bool:
    """True when ``token`` has the shape of a Formwork token (checked before any look-up)."""
    return bool(_TOKEN_SHAPE.fullmatch(token))


def note_use(conn: sa.Connection, tokens: sa.Table, token_id: int, last_used_at: datetime | None, now: datetime) -> bool:
    """Record that a token was used now, unless its last use is recent; True when it wrote.
    The last use is kept to the nearest few minutes: a write on every request would cost."""
    if last_used_at is not None and last_used_at >= now - LAST_USE_PRECISION:
        return False
    conn.execute(sa.update(tokens).where(tokens.c.id == token_id).values(last_used_at=now))
    return True


def list_tokens(conn: sa.Connection, tokens: sa.Table, user_id: int) -> list[TokenInfo]:
    """Every token of a user, oldest first."""
    query = sa.select(tokens).where(tokens.c.user_id == user_id).order_by(tokens.c.id)
    return [
        TokenInfo(row.id, row.name, row.prefix, to_utc(row.created_at), _utc(row.expires_at), _utc(row.last_used_at), _utc(row.revoked_at))
        for row in conn.execute(query)
    ]


def revoke_token(conn: sa.Connection, tokens: sa.Table, token_id: int, now: datetime) -> int | None:
    """Revoke a token; returns its user id, or None when there is no such token or it was
    already revoked."""
    row = conn.execute(sa.select(tokens.c.user_id, tokens.c.revoked_at).where(tokens.c.id == token_id)).first()
    if row is None or row.revoked_at is not None:
        return None
    conn.execute(sa.update(tokens).where(tokens.c.id == token_id).values(revoked_at=now))
    return int(row.user_id)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)
