"""Cheap fingerprints of table definitions, so ``plan`` compares only what may have changed.

Two kinds, both recorded by migrate:

- ``table_fingerprints``: each managed table as the database defines it, read in one to
  three catalog queries for all tables together;
- ``table_digest``: each table as the metadata defines it.

When neither the metadata nor the tables changed since the last migrate, the plan is
empty without any reflection; when a few entities changed, only their tables are
compared. A change made to a table outside Formwork changes its fingerprint, so that
table is compared again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa

_PG_COLUMNS = """
SELECT c.relname, a.attnum::text, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
       coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
"""
_PG_CONSTRAINTS = """
SELECT c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema()
"""
_PG_INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
_SQLITE_MASTER = "SELECT tbl_name, type, name, coalesce(sql, '') FROM sqlite_master"


def table_fingerprints(conn: sa.Connection, tables: Iterable[str]) -> dict[str, str]:
    """table -> digest of how the database defines it (absent tables get the digest of nothing).

    Empty on engines whose catalog we do not read; every table is then compared in full.
    """
    wanted = set(tables)
    if conn.dialect.name == "sqlite":
        queries = [_SQLITE_MASTER]
    elif conn.dialect.name == "postgresql":
        queries = [_PG_COLUMNS, _PG_CONSTRAINTS, _PG_INDEXES]
    else:
        return {}
    parts: dict[str, list[str]] = defaultdict(list)
    for query in queries:
        for row in conn.exec_driver_sql(query):
            if row[0] in wanted:
                parts[row[0]].append("\x1f".join(str(v) for v in row))
    return {table: _digest(sorted(parts.get(table, ()))) for table in wanted}


def schema_fingerprint(fingerprints: dict[str, str]) -> str | None:
    """One digest over several tables' fingerprints; None when there are none."""
    if not fingerprints:
        return None
    return _digest(f"{name}\x1d{fp}" for name, fp in sorted(fingerprints.items()))


def table_digest(table: sa.Table) -> str:
    """A digest of everything Formwork declares about ``table``: columns with their types,
    nullability and defaults, and every named constraint and index with its columns.

    Built from the objects directly (compiling DDL for hundreds of tables is much slower).
    """
    parts = [f"table {table.name}"]
    for column in table.columns:
        parts.append(f"column {column.name} {column.type!r} {column.nullable} {column.primary_key} {_default_text(column)}")
    for constraint in table.constraints:
        columns = ",".join(c.name for c in constraint.columns)
        extra = ""
        if isinstance(constraint, sa.ForeignKeyConstraint):
            extra = f"{constraint.referred_table.name} {constraint.ondelete}"
        parts.append(f"{type(constraint).__name__} {constraint.name} {columns} {extra}")
    for index in table.indexes:
        parts.append(f"index {index.name} {','.join(c.name for c in index.columns)} {index.unique}")
    return _digest(sorted(parts))


def _default_text(column: sa.Column) -> str:
    if column.server_default is None:
        return "-"
    arg = getattr(column.server_default, "arg", None)
    if isinstance(arg, str):
        return repr(arg)
    if isinstance(arg, sa.TextClause):
        return f"sql:{arg.text}"
    return type(arg).__name__


def _digest(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\x1c")
    return digest.hexdigest()
