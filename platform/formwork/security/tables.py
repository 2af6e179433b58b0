"""The security stage's system tables: personal tokens, login sessions, login attempts and
security events.

``add_security_tables`` adds them to the schema's ``MetaData`` (storage's ``build_schema``
calls it, so ``formwork migrate`` creates them like every other system table);
``security_tables`` finds them in a ``MetaData``, adding them first when missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

TOKEN_TABLE = "fw_token"
SESSION_TABLE = "fw_session"
LOGIN_ATTEMPT_TABLE = "fw_login_attempt"
SECURITY_EVENT_TABLE = "fw_security_event"
ROLE_TABLE = "fw_user_role"


@dataclass(frozen=True)
class SecurityTables:
    """The tables of the security stage inside one ``MetaData``."""

    tokens: sa.Table
    sessions: sa.Table
    login_attempts: sa.Table
    events: sa.Table
    user_roles: sa.Table


def add_security_tables(metadata: sa.MetaData, user_table: str = "fw_user") -> None:
    """Add ``fw_token``, ``fw_session``, ``fw_login_attempt`` and ``fw_security_event`` to
    ``metadata`` (``user_table`` is the built-in user entity's table)."""
    now = sa.func.current_timestamp()
    sa.Table(
        TOKEN_TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        # sha256 of the token: the token itself is shown once and never stored
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], [f"{user_table}.id"], ondelete="CASCADE", name="fk_fw_token_user_id"),
        sa.UniqueConstraint("token_hash", name="uq_fw_token_token_hash"),
        sa.Index("ix_fw_token_user_id", "user_id"),
    )
    sa.Table(
        SESSION_TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], [f"{user_table}.id"], ondelete="CASCADE", name="fk_fw_session_user_id"),
        sa.UniqueConstraint("session_hash", name="uq_fw_session_session_hash"),
        sa.Index("ix_fw_session_user_id", "user_id"),
    )
    sa.Table(
        LOGIN_ATTEMPT_TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=True),
        sa.Index("ix_fw_login_attempt_username_at", "username", "at"),
    )
    sa.Table(
        SECURITY_EVENT_TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        # names, not foreign keys: the log outlives deleted users
        sa.Column("username", sa.String(150), nullable=True),
        sa.Column("actor", sa.String(150), nullable=True),
        sa.Column("remote_addr", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON, nullable=True),
        sa.Index("ix_fw_security_event_at", "at"),
    )


def security_tables(metadata: sa.MetaData) -> SecurityTables:
    """The security tables of ``metadata``, added first when the schema was built without them."""
    if TOKEN_TABLE not in metadata.tables:
        add_security_tables(metadata)
    t = metadata.tables
    return SecurityTables(t[TOKEN_TABLE], t[SESSION_TABLE], t[LOGIN_ATTEMPT_TABLE], t[SECURITY_EVENT_TABLE], t[ROLE_TABLE])
