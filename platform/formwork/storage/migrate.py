"""Apply a plan: all of it in one transaction, or nothing.

Both engines run DDL inside the transaction (PostgreSQL natively, SQLite because
engine.py takes over BEGIN), so any failure rolls the whole migration back. The plan
is computed again inside the locked transaction, so two migrates started together
do the work once: the second waits, then finds nothing left to do.

SQLite specifics, kept here: foreign keys are switched off for the migration (a
table rebuild drops the old table, and with foreign keys on, SQLite would run that
drop's ON DELETE actions on the rows that refer to it) and verified with
``PRAGMA foreign_key_check`` before commit.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from formwork.metadata.model import App
from formwork.problems import Problem
from formwork.storage import lock
from formwork.storage.conversion import shape_of, using_clause
from formwork.storage.diff import compute_plan, unchanged_since
from formwork.storage.engine import BEGIN_IMMEDIATE, SQLITE_BUSY_TIMEOUT_MS
from formwork.storage.fingerprint import schema_fingerprint, table_digest, table_fingerprints
from formwork.storage.plan import MigrationFailed, MigrationRefused, Operation, Plan
from formwork.storage.state import read_state, write_state
from formwork.storage.tables import Schema, build_schema

LOCK_TIMEOUT_SECONDS = 60.0
# Kinds applied per existing table inside one batch (one rebuild on SQLite).
BATCH_KINDS = (
    "drop_index",
    "drop_unique",
    "drop_check",
    "drop_foreign_key",
    "drop_column",
    "alter_type",
    "alter_nullable",
    "add_column",
    "add_foreign_key",
    "add_unique",
    "add_check",
    "create_index",
)


def migrate(
    engine: sa.Engine,
    app: App,
    allow_destructive: bool = False,
    git_commit: str | None = None,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> Plan:
    """Bring the database in line with ``app`` and return the plan that was applied.

    Raises ``MigrationRefused`` (nothing changed) when the plan has blocked operations or
    another migrate holds the lock past ``lock_timeout`` seconds, and ``MigrationFailed``
    (everything rolled back) when the database rejects a statement. On success the metadata
    state (hash, App version, git commit, time, managed tables) is recorded.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys = OFF")
            lock.sqlite_wait(raw, lock_timeout)
            conn.execution_options(**{BEGIN_IMMEDIATE: True})
        try:
            return _migrate_locked(conn, app, allow_destructive, git_commit, lock_timeout)
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys = ON")
                lock.sqlite_wait(raw, SQLITE_BUSY_TIMEOUT_MS / 1000)
                conn.execution_options(**{BEGIN_IMMEDIATE: False})


def _migrate_locked(conn: sa.Connection, app: App, allow_destructive: bool, git_commit: str | None, lock_timeout: float) -> Plan:
    try:
        transaction = conn.begin()
    except sa.exc.OperationalError as exc:
        raise _busy() from exc
    with transaction:
        if conn.dialect.name == "postgresql":
            try:
                lock.acquire_postgres(conn, lock_timeout)
            except lock.LockTimeout as exc:
                raise _busy() from exc
            # A web process holding a table lock must not make ALTER TABLE wait forever.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'")
        if unchanged_since(conn, app, read_state(conn)):
            return Plan(dialect=conn.dialect.name, allow_destructive=allow_destructive, metadata_hash=app.metadata_hash)
        target = build_schema(app)
        plan = compute_plan(conn, app, allow_destructive, target)
        if plan.blocked:
            raise MigrationRefused(plan, plan.problems())
        if not plan.is_empty:
            _Applier(conn, target, plan).apply()
        state = read_state(conn)
        if not plan.is_empty or state is None or state.metadata_hash != app.metadata_hash:
            tables = list(target.table_names)
            fingerprints = table_fingerprints(conn, tables)
            digests = {
                name: {"metadata": table_digest(target.metadata.tables[name]), "database": fingerprints[name]}
                for name in fingerprints
            }
            write_state(conn, app.metadata_hash, app.version, git_commit, tables, schema_fingerprint(fingerprints), digests)
    return plan


def _busy() -> MigrationRefused:
    return MigrationRefused(
        Plan(compared=False),
        [
            Problem(
                "FW-E520",
                "another migrate is running on this database and did not finish in time",
                path="database",
                hint="wait for it to finish, then run migrate again",
            )
        ],
    )


class _Applier:
    def __init__(self, conn: sa.Connection, target: Schema, plan: Plan) -> None:
        self.conn = conn
        self.target = target
        self.plan = plan
        self.ops = Operations(MigrationContext.configure(conn))
        self.sqlite = conn.dialect.name == "sqlite"
        self.current: Operation | None = None

    def apply(self) -> None:
        try:
            self._apply_all()
        except (sa.exc.DBAPIError, NotImplementedError, ValueError) as exc:
            what = self.current.describe() if self.current else "the migration"
            detail = getattr(exc, "orig", exc)
            raise MigrationFailed(
                self.plan,
                Problem("FW-E530", f"the database refused '{what}': {detail}; nothing was changed", path=self.current.table if self.current else ""),
            ) from exc

    def _apply_all(self) -> None:
        by_kind: dict[str, list[Operation]] = defaultdict(list)
        for op in self.plan.operations:
            by_kind[op.kind].append(op)
        for op in by_kind["rename_table"]:
            self.current = op
            self.ops.rename_table(op.old_name, op.table)
        for op in by_kind["rename_column"]:
            self.current = op
            self._execute(f"ALTER TABLE {self._q(op.table)} RENAME COLUMN {self._q(op.old_name)} TO {self._q(op.column)}")
        # New tables before the changes to existing ones: a new link column may point at them.
        new_tables = [op.table for op in by_kind["create_table"]]
        self._create_tables(new_tables, by_kind["create_index"])
        per_table: dict[str, list[Operation]] = defaultdict(list)
        for op in self.plan.operations:
            if op.kind in BATCH_KINDS and op.table not in new_tables:
                per_table[op.table].append(op)
        for table, table_ops in per_table.items():
            self._alter_table(table, table_ops)
        for op in by_kind["drop_table"]:
            self.current = op
            self._execute(f"CREATE TABLE {self._q(op.detail['archive'])} AS SELECT * FROM {self._q(op.table)}")
            self.ops.drop_table(op.table)
        if self.sqlite:
            self.current = None
            broken = self._execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise ValueError(f"{len(broken)} row(s) would break links, first in table {broken[0][0]}")

    def _alter_table(self, table: str, table_ops: list[Operation]) -> None:
        for op in table_ops:
            if op.kind == "drop_column":
                self.current = op
                self._execute(
                    f"CREATE TABLE {self._q(op.detail['archive'])} AS SELECT id, {self._q(op.column)} AS value "
                    f"FROM {self._q(table)}"
                )
        target = self.target.metadata.tables[table]
        with self.ops.batch_alter_table(table) as batch:
            for op in table_ops:
                self.current = op
                self._batch_op(batch, target, op)
        self.current = table_ops[-1]

    def _batch_op(self, batch: Operations, target: sa.Table, op: Operation) -> None:
        kind = op.kind
        if kind == "drop_index":
            batch.drop_index(op.name)
        elif kind in ("drop_unique", "drop_check", "drop_foreign_key"):
            batch.drop_constraint(op.name, type_={"drop_unique": "unique", "drop_check": "check", "drop_foreign_key": "foreignkey"}[kind])
        elif kind == "drop_column":
            batch.drop_column(op.column)
        elif kind == "alter_type":
            column = target.c[op.column]
            current = self._current_column(target.name, op.column)
            old_type = current["type"]
            new_sql = column.type.compile(dialect=self.conn.dialect)
            batch.alter_column(
                op.column,
                type_=column.type,
                existing_type=old_type,
                existing_nullable=current["nullable"],
                postgresql_using=using_clause(self._q(op.column), new_sql, shape_of(old_type), shape_of(column.type)),
            )
        elif kind == "alter_nullable":
            column = target.c[op.column]
            batch.alter_column(op.column, nullable=op.detail["nullable"], existing_type=column.type)
        elif kind == "add_column":
            batch.add_column(_bare_column(target.c[op.column]))
        elif kind == "add_foreign_key":
            constraint = _named(target.foreign_key_constraints, op.name)
            batch.create_foreign_key(
                op.name,
                constraint.referred_table.name,
                [c.name for c in constraint.columns],
                [e.column.name for e in constraint.elements],
                ondelete=constraint.ondelete,
            )
        elif kind == "add_unique":
            batch.create_unique_constraint(op.name, list(op.columns))
        elif kind == "add_check":
            constraint = _named(target.constraints, op.name)
            batch.create_check_constraint(op.name, constraint.sqltext)
        elif kind == "create_index":
            batch.create_index(op.name, list(op.columns))

    def _create_tables(self, names: list[str], index_ops: list[Operation]) -> None:
        tables = [self.target.metadata.tables[name] for name in names]
        for table in tables:
            self.current = next(op for op in self.plan.operations if op.kind == "create_table" and op.table == table.name)
            # PostgreSQL checks that a referenced table exists, and links can form cycles:
            # create every new table first, then add their foreign keys.
            inline = None if self.sqlite else []
            self.conn.execute(sa.schema.CreateTable(table, include_foreign_key_constraints=inline))
        for op in index_ops:
            if op.table in names:
                self.current = op
                self.ops.create_index(op.name, op.table, list(op.columns))
        if not self.sqlite:
            for table in tables:
                for constraint in sorted(table.foreign_key_constraints, key=lambda c: c.name):
                    self.conn.execute(sa.schema.AddConstraint(constraint))

    def _current_column(self, table: str, column: str) -> dict:
        for info in sa.inspect(self.conn).get_columns(table):
            if info["name"] == column:
                return info
        raise ValueError(f"column {table}.{column} not found")

    def _q(self, name: str) -> str:
        return self.conn.dialect.identifier_preparer.quote(name)

    def _execute(self, sql: str) -> sa.CursorResult:
        return self.conn.exec_driver_sql(sql)


def _bare_column(column: sa.Column) -> sa.Column:
    """A detached copy without foreign keys (links are added as named constraints)."""
    default = column.server_default.arg if column.server_default is not None else None
    return sa.Column(column.name, column.type, nullable=column.nullable, server_default=default)


def _named(constraints: object, name: str) -> sa.Constraint:
    return next(c for c in constraints if c.name == name)
