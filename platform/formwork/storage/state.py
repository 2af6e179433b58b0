"""The metadata state stamped into the database by every migrate (table ``fw_metadata_state``).

One row per applied migration; the newest row says which metadata the database
matches, and lists the tables Formwork managed then: only those may ever be
dropped, so tables someone else created in the same database are left alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

import formwork

STATE_TABLE = "fw_metadata_state"


@dataclass(frozen=True)
class MetadataState:
    """What the last migrate applied."""

    metadata_hash: str
    app_version: str | None
    git_commit: str | None
    applied_at: dt.datetime
    formwork_version: str | None
    tables: tuple[str, ...]
    schema_fingerprint: str | None = None  # see fingerprint.py
    # table -> {"metadata": table_digest, "database": table fingerprint} right after that migrate
    table_digests: dict[str, dict[str, str]] = field(default_factory=dict)


def read_state(engine_or_connection: sa.Engine | sa.Connection) -> MetadataState | None:
    """The newest metadata state, or None when the database was never migrated."""
    if isinstance(engine_or_connection, sa.Engine):
        with engine_or_connection.connect() as conn:
            return read_state(conn)
    conn = engine_or_connection
    if not sa.inspect(conn).has_table(STATE_TABLE):
        return None
    table = _state_table()
    row = conn.execute(sa.select(table).order_by(table.c.id.desc()).limit(1)).mappings().first()
    if row is None:
        return None
    return MetadataState(
        metadata_hash=row["metadata_hash"],
        app_version=row["app_version"],
        git_commit=row["git_commit"],
        applied_at=row["applied_at"],
        formwork_version=row["formwork_version"],
        tables=tuple(row["managed_tables"] or ()),
        schema_fingerprint=row["schema_fingerprint"],
        table_digests=row["table_digests"] or {},
    )


def write_state(
    conn: sa.Connection,
    metadata_hash: str,
    app_version: str,
    git_commit: str | None,
    tables: list[str],
    schema_fingerprint: str | None,
    table_digests: dict[str, dict[str, str]],
) -> None:
    """Append a state row (inside the caller's migration transaction)."""
    conn.execute(
        sa.insert(_state_table()).values(
            metadata_hash=metadata_hash,
            app_version=app_version,
            git_commit=git_commit,
            applied_at=dt.datetime.now(dt.UTC),
            formwork_version=formwork.__version__,
            managed_tables=sorted(tables),
            schema_fingerprint=schema_fingerprint,
            table_digests=table_digests,
        )
    )


def _state_table() -> sa.TableClause:
    # A light description for reading and writing; the full definition lives in tables.py.
    return sa.table(
        STATE_TABLE,
        sa.column("id", sa.Integer),
        sa.column("metadata_hash", sa.String),
        sa.column("app_version", sa.String),
        sa.column("git_commit", sa.String),
        sa.column("applied_at", sa.DateTime(timezone=True)),
        sa.column("formwork_version", sa.String),
        sa.column("managed_tables", sa.JSON),
        sa.column("schema_fingerprint", sa.String),
        sa.column("table_digests", sa.JSON),
    )
