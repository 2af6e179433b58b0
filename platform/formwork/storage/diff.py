"""Compare the database with the App's tables and produce a Plan.

Alembic's ``compare_metadata`` finds the differences (one reflection pass); this module
adds what Alembic cannot know: declared renames (``renamed_from``), CHECK constraints,
which tables Formwork manages, and whether the existing rows allow each change.

Renames: the target tables are built a second time under the names they had before
the declared renames and compared with the database, so a renamed table or column
shows up as "the same thing" instead of a drop plus a create. Every difference found
is then reported under the new names; migrate performs the renames first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import formwork
from formwork.metadata.model import App
from formwork.problems import Place
from formwork.storage.conversion import classify, shape_of
from formwork.storage.fingerprint import schema_fingerprint, table_digest, table_fingerprints
from formwork.storage.plan import DESTRUCTIVE, NEEDS_DATA, Operation, Plan
from formwork.storage.state import MetadataState, read_state
from formwork.storage.tables import MAX_NAME, Schema, _SchemaBuilder, build_schema

SAMPLE_SIZE = 5
ARCHIVE_PREFIX = "fw_archive_"

# Order in which migrate applies operation kinds: renames first, new tables (which other
# tables' new links may need), removals (so names and columns are free), changes,
# additions, table drops last.
APPLY_ORDER = {
    kind: i
    for i, kind in enumerate(
        (
            "rename_table",
            "rename_column",
            "create_table",
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
            "drop_table",
        )
    )
}


@dataclass
class _Names:
    """Database names (before renames) of target tables and columns."""

    tables: dict[str, str] = field(default_factory=dict)  # target table -> table in the database now
    columns: dict[tuple[str, str], str] = field(default_factory=dict)  # (target table, column) -> db column
    to_target_table: dict[str, str] = field(default_factory=dict)
    to_target_column: dict[tuple[str, str], str] = field(default_factory=dict)  # (target table, db col) -> col

    def db_table(self, target: str) -> str:
        return self.tables.get(target, target)

    def db_column(self, target_table: str, column: str) -> str:
        return self.columns.get((target_table, column), column)

    def target_table(self, db_table: str) -> str:
        return self.to_target_table.get(db_table, db_table)

    def target_column(self, target_table: str, db_column: str) -> str:
        return self.to_target_column.get((target_table, db_column), db_column)


def plan_migration(engine: sa.Engine, app: App, allow_destructive: bool = False) -> Plan:
    """The operations that bring the database in line with ``app``, each judged for safety.

    Reads the schema and, only where a change depends on it, the data; never writes.
    An up-to-date database gives an empty plan.
    """
    with engine.connect() as conn:
        return compute_plan(conn, app, allow_destructive)


def compute_plan(conn: sa.Connection, app: App, allow_destructive: bool, target: Schema | None = None) -> Plan:
    """``plan_migration`` on an open connection (migrate plans inside its own transaction).

    ``target`` is ``build_schema(app)`` when the caller has it already.
    """
    state = read_state(conn)
    if unchanged_since(conn, app, state):
        return Plan(dialect=conn.dialect.name, allow_destructive=allow_destructive, metadata_hash=app.metadata_hash)
    planner = _Planner(conn, app, allow_destructive, state, target or build_schema(app))
    return planner.plan()


def unchanged_since(conn: sa.Connection, app: App, state: MetadataState | None) -> bool:
    """True when the last migrate applied this very metadata and nobody touched its tables since."""
    return (
        state is not None
        and bool(app.metadata_hash)
        and state.metadata_hash == app.metadata_hash
        and state.formwork_version == formwork.__version__
        and state.schema_fingerprint is not None
        and state.schema_fingerprint == schema_fingerprint(table_fingerprints(conn, state.tables))
    )


class _Planner:
    def __init__(
        self, conn: sa.Connection, app: App, allow_destructive: bool, state: MetadataState | None, target: Schema
    ) -> None:
        self.conn = conn
        self.app = app
        self.allow_destructive = allow_destructive
        self.stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        self.inspector = sa.inspect(conn)
        self.existing = set(self.inspector.get_table_names())
        self.state = state
        self.managed = set(state.tables) if state else set()
        self.target = target
        self.names = _Names()
        self.ops: list[Operation] = []
        self.added_columns: set[tuple[str, str]] = set()
        self.entities_by_table = {e.table: e for e in app.entities.values()}

    def plan(self) -> Plan:
        self._find_renames()
        before = self._schema_before_renames()
        wanted = set(before.metadata.tables)
        for name in sorted(wanted - self.existing):
            self._create_table(before.metadata.tables[name])
        unchanged = self._unchanged_tables(before, wanted & self.existing)

        def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
            # Tables nobody declared are someone else's unless a previous migrate managed them.
            if type_ == "table":
                return (name in wanted or name in self.managed) and name not in unchanged
            return True

        def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
            # New tables are planned above, without Alembic copying each of them.
            if type_ == "table":
                return name in self.existing and name not in unchanged
            return True

        # With nothing left to compare, skip Alembic: it reads an empty table list as "all tables".
        if (self.existing & (wanted | self.managed)) - unchanged:
            options = {"compare_type": True, "include_name": include_name, "include_object": include_object}
            context = MigrationContext.configure(self.conn, opts=options)
            for diff in compare_metadata(context, before.metadata):
                for item in diff if isinstance(diff, list) else [diff]:
                    self._translate(item)
        self._compare_checks(before, unchanged)
        # Alembic also lists the indexes of a removed table; they go with the table.
        dropped = {op.table for op in self.ops if op.kind == "drop_table"}
        self.ops = [op for op in self.ops if op.kind == "drop_table" or op.table not in dropped]
        self.ops.sort(key=lambda op: APPLY_ORDER[op.kind])
        return Plan(
            operations=tuple(self.ops),
            dialect=self.conn.dialect.name,
            allow_destructive=self.allow_destructive,
            metadata_hash=self.app.metadata_hash,
        )

    # -- renames ---------------------------------------------------------------------------

    def _find_renames(self) -> None:
        current_tables = {e.table for e in self.app.entities.values()}
        for entity in self.app.entities.values():
            if entity.table not in self.existing:
                # A renamed entity keeps the convention "table name = entity name".
                for old_table in entity.renamed_from:
                    if old_table in self.existing and old_table not in current_tables:
                        self.names.tables[entity.table] = old_table
                        self.names.to_target_table[old_table] = entity.table
                        self._add(
                            "rename_table",
                            entity.table,
                            old_name=old_table,
                            reason=f"entity renamed: table {old_table} becomes {entity.table}, rows kept",
                        )
                        break
            db_table = self.names.db_table(entity.table)
            if db_table not in self.existing or not any(f.renamed_from for f in entity.fields.values()):
                continue
            db_columns = {c["name"] for c in self.inspector.get_columns(db_table)}
            for fld in entity.stored_fields():
                if fld.name in db_columns:
                    continue
                for old in fld.renamed_from:
                    if old in db_columns and old not in entity.fields:
                        self.names.columns[(entity.table, fld.name)] = old
                        self.names.to_target_column[(entity.table, old)] = fld.name
                        self._add(
                            "rename_column",
                            entity.table,
                            fld.name,
                            old_name=old,
                            reason=f"field renamed from {old}: values kept",
                        )
                        break

    def _schema_before_renames(self) -> Schema:
        if not self.names.tables and not self.names.columns:
            return self.target
        return _SchemaBuilder(
            self.app,
            table_name=lambda entity: self.names.db_table(entity.table),
            column_name=lambda entity, column: self.names.db_column(entity.table, column),
        ).build()

    # -- translating Alembic's differences ------------------------------------------------------

    def _create_table(self, table: sa.Table) -> None:
        self._add("create_table", table.name, reason="new table")
        for index in sorted(table.indexes, key=lambda ix: ix.name):
            columns = tuple(c.name for c in index.columns)
            self._add("create_index", table.name, name=index.name, columns=columns, reason=f"index on {', '.join(columns)}")

    def _translate(self, item: tuple) -> None:
        kind = item[0]
        if kind == "remove_table":
            self._drop_table(item[1].name)
        elif kind == "add_column":
            self._add_column(self.names.target_table(item[2]), item[3])
        elif kind == "remove_column":
            self._drop_column(self.names.target_table(item[2]), item[3].name)
        elif kind == "modify_type":
            _, _, db_table, db_column, _existing, old_type, new_type = item
            table = self.names.target_table(db_table)
            self._alter_type(table, self.names.target_column(table, db_column), old_type, new_type)
        elif kind == "modify_nullable":
            _, _, db_table, db_column, _existing, _old, new_nullable = item
            table = self.names.target_table(db_table)
            self._alter_nullable(table, self.names.target_column(table, db_column), new_nullable)
        elif kind in ("add_index", "remove_index"):
            index = item[1]
            table = self.names.target_table(index.table.name)
            columns = self._target_columns(table, [c.name for c in index.columns])
            if kind == "add_index":
                self._add("create_index", table, name=index.name, columns=columns, reason=f"index on {', '.join(columns)}")
            else:
                self._add("drop_index", table, name=index.name, columns=columns, reason="index no longer declared")
        elif kind in ("add_constraint", "remove_constraint") and isinstance(item[1], sa.UniqueConstraint):
            constraint = item[1]
            table = self.names.target_table(constraint.table.name)
            columns = self._target_columns(table, [c.name for c in constraint.columns])
            if kind == "add_constraint":
                self._add_unique(table, constraint.name, columns)
            else:
                self._add("drop_unique", table, name=constraint.name, columns=columns, reason="unique rule no longer declared")
        elif kind in ("add_fk", "remove_fk"):
            constraint = item[1]
            table = self.names.target_table(constraint.table.name)
            columns = self._target_columns(table, [c.name for c in constraint.columns])
            if kind == "add_fk":
                self._add_foreign_key(table, constraint.name, columns)
            else:
                self._add("drop_foreign_key", table, name=constraint.name, columns=columns, reason="link no longer declared")

    def _target_columns(self, table: str, db_columns: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.names.target_column(table, c) for c in db_columns)

    def _is_new(self, table: str) -> bool:
        return self.names.db_table(table) not in self.existing

    # -- one difference each --------------------------------------------------------------------

    def _add_column(self, table: str, column: sa.Column) -> None:
        self.added_columns.add((table, column.name))
        if column.nullable or column.server_default is not None:
            why = "new optional column" if column.nullable else "new column; existing rows get the default"
            self._add("add_column", table, column.name, reason=why)
            return
        rows = self._count(table)
        if rows:
            self._add(
                "add_column",
                table,
                column.name,
                safety=NEEDS_DATA,
                blocked=True,
                code="FW-E501",
                reason=f"required field without a default, but the table has {rows} row(s) that would have no value",
                detail={"rows": rows, "hint": "give the field a default, or make it optional, migrate, fill it in, then make it required"},
            )
        else:
            self._add("add_column", table, column.name, reason="new required column; the table is empty")

    def _drop_column(self, table: str, column: str) -> None:
        values = self._count(table, f"{self._q(self.names.db_column(table, column))} IS NOT NULL")
        archive = archive_name(table, self.stamp, column)
        detail = {"values": values, "archive": archive}
        self._destructive("drop_column", table, column, "FW-E504", f"field removed: {values} stored value(s)", detail)

    def _drop_table(self, db_table: str) -> None:
        rows = self._count_db(db_table)
        detail = {"rows": rows, "archive": archive_name(db_table, self.stamp)}
        self._destructive("drop_table", db_table, None, "FW-E505", f"entity removed: the table has {rows} row(s)", detail)

    def _destructive(self, kind: str, table: str, column: str | None, code: str, reason: str, detail: dict) -> None:
        if self.allow_destructive:
            self._add(kind, table, column, safety=DESTRUCTIVE, reason=f"{reason}; old data kept in {detail['archive']}", detail=detail)
        else:
            detail = {k: v for k, v in detail.items() if k != "archive"}
            detail["hint"] = "run migrate with --allow-destructive to apply it; the old data is then kept in an archive table"
            self._add(kind, table, column, safety=DESTRUCTIVE, blocked=True, code=code, reason=reason, detail=detail)

    def _alter_type(self, table: str, column: str, old_type: sa.types.TypeEngine, new_type: sa.types.TypeEngine) -> None:
        old, new = shape_of(old_type), shape_of(new_type)
        change = classify(old, new)
        detail: dict[str, Any] = {"from": str(old), "to": str(new)}
        if not change.supported:
            detail["hint"] = "add a new field, copy the values over, then remove the old field"
            self._add("alter_type", table, column, safety=DESTRUCTIVE, blocked=True, code="FW-E503", reason=change.reason, detail=detail)
            return
        if change.accepts is not None:
            failing, samples = self._values_failing(table, column, change.accepts)
            if failing:
                detail.update(rows=failing, samples=samples, hint="correct or clear these values first")
                self._add(
                    "alter_type",
                    table,
                    column,
                    safety=change.safety,
                    blocked=True,
                    code="FW-E502",
                    reason=f"{change.reason}: {failing} existing value(s) do not convert",
                    detail=detail,
                )
                return
        if change.safety == DESTRUCTIVE and not self.allow_destructive:
            detail["hint"] = "run migrate with --allow-destructive to narrow the column"
            self._add(
                "alter_type",
                table,
                column,
                safety=DESTRUCTIVE,
                blocked=True,
                code="FW-E506",
                reason=f"{change.reason}: narrowing (every existing value fits)",
                detail=detail,
            )
            return
        self._add("alter_type", table, column, safety=change.safety, reason=change.reason, detail=detail)

    def _alter_nullable(self, table: str, column: str, nullable: bool) -> None:
        if nullable:
            self._add("alter_nullable", table, column, reason="field no longer required", detail={"nullable": True})
            return
        empty = self._count(table, f"{self._q(self.names.db_column(table, column))} IS NULL")
        if empty:
            self._add(
                "alter_nullable",
                table,
                column,
                safety=NEEDS_DATA,
                blocked=True,
                code="FW-E507",
                reason=f"field made required, but {empty} row(s) have no value",
                detail={"nullable": False, "rows": empty, "hint": "fill in the empty values first"},
            )
        else:
            self._add("alter_nullable", table, column, safety=NEEDS_DATA, reason="field made required; every row has a value", detail={"nullable": False})

    def _add_unique(self, table: str, name: str, columns: tuple[str, ...]) -> None:
        if self._is_new(table) or any((table, c) in self.added_columns for c in columns):
            self._add("add_unique", table, name=name, columns=columns, reason=f"unique {', '.join(columns)}")
            return
        db_cols = ", ".join(self._q(self.names.db_column(table, c)) for c in columns)
        not_null = " AND ".join(f"{self._q(self.names.db_column(table, c))} IS NOT NULL" for c in columns)
        query = (
            f"SELECT {db_cols}, COUNT(*) FROM {self._q(self.names.db_table(table))} WHERE {not_null} "
            f"GROUP BY {db_cols} HAVING COUNT(*) > 1"
        )
        duplicates = self.conn.exec_driver_sql(query).fetchall()
        if duplicates:
            samples = [row[0] if len(columns) == 1 else tuple(row[:-1]) for row in duplicates[:SAMPLE_SIZE]]
            self._add(
                "add_unique",
                table,
                name=name,
                columns=columns,
                safety=NEEDS_DATA,
                blocked=True,
                code="FW-E508",
                reason=f"unique {', '.join(columns)}, but {len(duplicates)} value(s) occur more than once",
                detail={"rows": len(duplicates), "samples": samples, "hint": "make the duplicated values distinct first"},
            )
        else:
            self._add("add_unique", table, name=name, columns=columns, safety=NEEDS_DATA, reason=f"unique {', '.join(columns)}; existing values are distinct")

    def _add_foreign_key(self, table: str, name: str, columns: tuple[str, ...]) -> None:
        target_table = self.target.metadata.tables[table]
        constraint = next(c for c in target_table.foreign_key_constraints if c.name == name)
        referred = constraint.referred_table.name
        if self._is_new(table) or self._is_new(referred) or (table, columns[0]) in self.added_columns:
            self._add("add_foreign_key", table, name=name, columns=columns, reason=f"link to {referred}")
            return
        if any(op.kind == "alter_type" and (op.table, op.column) == (table, columns[0]) for op in self.ops):
            # The values are converted first; the database checks them when the link is added.
            self._add("add_foreign_key", table, columns[0], name=name, columns=columns, safety=NEEDS_DATA, reason=f"link to {referred}")
            return
        column = self._q(self.names.db_column(table, columns[0]))
        query = (
            f"SELECT t.{column} FROM {self._q(self.names.db_table(table))} t WHERE t.{column} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {self._q(self.names.db_table(referred))} r WHERE r.id = t.{column})"
        )
        orphans = [row[0] for row in self.conn.exec_driver_sql(query).fetchall()]
        if orphans:
            self._add(
                "add_foreign_key",
                table,
                columns[0],
                name=name,
                columns=columns,
                safety=NEEDS_DATA,
                blocked=True,
                code="FW-E509",
                reason=f"link to {referred}, but {len(orphans)} row(s) point at records that do not exist",
                detail={"rows": len(orphans), "samples": orphans[:SAMPLE_SIZE], "hint": "clear or correct these values first"},
            )
        else:
            self._add("add_foreign_key", table, columns[0], name=name, columns=columns, safety=NEEDS_DATA, reason=f"link to {referred}; every value points at a record")

    def _unchanged_tables(self, before: Schema, candidates: set[str]) -> set[str]:
        """Tables whose metadata and database definitions both equal those the last migrate left."""
        recorded = self.state.table_digests if self.state else {}
        if not recorded:
            return set()
        fingerprints = table_fingerprints(self.conn, candidates)
        unchanged = set()
        for name in candidates:
            digests = recorded.get(name)
            if (
                digests
                and digests.get("database") == fingerprints.get(name)
                and digests.get("metadata") == table_digest(before.metadata.tables[name])
            ):
                unchanged.add(name)
        return unchanged

    def _compare_checks(self, before: Schema, unchanged: set[str]) -> None:
        """CHECK constraints (choice options), which Alembic's comparison does not cover."""
        for db_name, table in before.metadata.tables.items():
            if db_name in unchanged:
                continue
            target = self.names.target_table(db_name)
            wanted = {c.name: c for c in table.constraints if isinstance(c, sa.CheckConstraint)}
            if db_name not in self.existing:
                continue  # a new table gets its checks with create_table
            if not wanted and not self._may_have_checks(db_name):
                continue
            present = {c["name"] for c in self.inspector.get_check_constraints(db_name) if c.get("name")}
            for name in sorted(present - set(wanted)):
                self._add("drop_check", target, name=name, reason="choice options changed or field removed")
            for name in sorted(set(wanted) - present):
                self._add_check(target, name, wanted[name])

    def _may_have_checks(self, db_name: str) -> bool:
        # Only managed tables can hold our checks; skipping the rest saves a reflection per table.
        return db_name in self.managed

    def _add_check(self, table: str, name: str, constraint: sa.CheckConstraint) -> None:
        column = next(iter(constraint.sqltext.get_children())).name
        target_column = self.names.target_column(table, column)
        entity = self.entities_by_table[table]
        allowed = entity.fields[target_column].option_values
        if (table, target_column) in self.added_columns:
            self._add("add_check", table, target_column, name=name, reason=f"allowed values {', '.join(allowed)}")
            return
        db_column = sa.column(self.names.db_column(table, target_column))
        outside = sa.and_(db_column.is_not(None), db_column.not_in(list(allowed)))
        db_table = sa.table(self.names.db_table(table), db_column)
        count = self.conn.execute(sa.select(sa.func.count()).select_from(db_table).where(outside)).scalar_one()
        if count:
            query = sa.select(db_column).select_from(db_table).where(outside).distinct().order_by(db_column).limit(SAMPLE_SIZE)
            samples = list(self.conn.execute(query).scalars())
            self._add(
                "add_check",
                table,
                target_column,
                name=name,
                safety=NEEDS_DATA,
                blocked=True,
                code="FW-E510",
                reason=f"allowed values {', '.join(allowed)}, but {count} row(s) hold other values",
                detail={"rows": count, "samples": samples, "hint": "change these values to allowed options first"},
            )
        else:
            self._add("add_check", table, target_column, name=name, safety=NEEDS_DATA, reason=f"allowed values {', '.join(allowed)}")

    # -- data questions --------------------------------------------------------------------

    def _q(self, name: str) -> str:
        return self.conn.dialect.identifier_preparer.quote(name)

    def _count(self, table: str, where: str | None = None) -> int:
        if self._is_new(table):
            return 0
        return self._count_db(self.names.db_table(table), where)

    def _count_db(self, db_table: str, where: str | None = None) -> int:
        query = f"SELECT COUNT(*) FROM {self._q(db_table)}" + (f" WHERE {where}" if where else "")
        return int(self.conn.exec_driver_sql(query).scalar_one())

    def _values_failing(self, table: str, column: str, accepts: Any) -> tuple[int, list[Any]]:
        """How many stored values ``accepts`` rejects, and up to five distinct ones of them."""
        if self._is_new(table) or (table, column) in self.added_columns:
            return 0, []
        db_column = self._q(self.names.db_column(table, column))
        query = f"SELECT {db_column} FROM {self._q(self.names.db_table(table))} WHERE {db_column} IS NOT NULL"
        failing, samples = 0, []
        # Streamed: a large table is read once and never held in memory.
        for (value,) in self.conn.exec_driver_sql(query, execution_options={"yield_per": 1000}):
            if not accepts(value):
                failing += 1
                if len(samples) < SAMPLE_SIZE and value not in samples:
                    samples.append(value)
        return failing, samples

    def _add(self, kind: str, table: str, column: str | None = None, **values: Any) -> None:
        self.ops.append(Operation(kind=kind, table=table, column=column, place=self._place(table, column), **values))

    def _place(self, table: str, column: str | None) -> Place | None:
        entity = self.entities_by_table.get(table)
        if entity is None:
            return None
        fld = entity.fields.get(column) if column else None
        return (fld.place if fld else None) or entity.place


def archive_name(table: str, stamp: str, column: str | None = None) -> str:
    """The archive table keeping a dropped table's rows (or a dropped column's values).

    ``fw_archive_<table>[_<column>]_<yyyymmddhhmmss>``; a long head is shortened with a hash
    so the whole name stays within 63 characters and still ends in the time stamp.
    """
    head = "_".join([ARCHIVE_PREFIX + table, *([column] if column else [])])
    room = MAX_NAME - len(stamp) - 1
    if len(head) > room:
        head = f"{head[: room - 9]}_{hashlib.sha1(head.encode()).hexdigest()[:8]}"
    return f"{head}_{stamp}"
