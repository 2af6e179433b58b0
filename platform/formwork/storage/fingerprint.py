"""A cheap fingerprint of the managed tables' definitions, read in one to three catalog queries.

Migrate records it with the metadata hash. When neither the metadata nor the tables
changed since, the plan is known to be empty without reflecting every table, which is
what keeps ``plan`` fast on large apps. Any change made to those tables outside
Formwork changes the fingerprint, and the full comparison runs again.
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


def schema_fingerprint(conn: sa.Connection, tables: Iterable[str]) -> str | None:
    """A digest of how the database defines ``tables``; None on engines we cannot read cheaply."""
    wanted = set(tables)
    if conn.dialect.name == "sqlite":
        queries = [_SQLITE_MASTER]
    elif conn.dialect.name == "postgresql":
        queries = [_PG_COLUMNS, _PG_CONSTRAINTS, _PG_INDEXES]
    else:
        return None
    parts: dict[str, list[str]] = defaultdict(list)
    for query in queries:
        for row in conn.exec_driver_sql(query):
            if row[0] in wanted:
                parts[row[0]].append("\x1f".join(str(v) for v in row))
    digest = hashlib.sha256()
    for table in sorted(wanted):
        digest.update(f"\x1e{table}\x1d".encode())
        for part in sorted(parts.get(table, ())):
            digest.update(part.encode() + b"\x1c")
    return digest.hexdigest()
