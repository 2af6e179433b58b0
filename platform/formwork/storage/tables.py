"""Tables from the compiled App: one SQLAlchemy ``MetaData`` describing the whole database.

Every entity becomes one table named ``Entity.table`` whose columns are the
system columns plus one column per stored field. Constraint and index names are
derived from table and column names only, so building the same App twice gives
the same names, and they stay within PostgreSQL's 63 character limit.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from formwork.metadata.model import STATUS_FIELD, App, Entity, Field
from formwork.workflow.tables import add_workflow_tables

# PostgreSQL truncates identifiers silently at 63 bytes; we shorten with a hash instead.
MAX_NAME = 63

DEFAULT_STRING_LENGTH = 255
DEFAULT_DIGITS = (18, 2)
MIN_CHOICE_LENGTH = 40


def object_name(prefix: str, table: str, columns: tuple[str, ...] | list[str] = ()) -> str:
    """A deterministic constraint/index name ``<prefix>_<table>_<cols>``, at most 63 characters.

    Longer names keep a readable head and end in 8 hex digits of a hash of the full name,
    so two different long names never collide.
    """
    full = "_".join([prefix, table, *columns])
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha1(full.encode()).hexdigest()[:8]
    return f"{full[: MAX_NAME - 9]}_{digest}"


@dataclass(frozen=True)
class Schema:
    """The database shape of an App: ``metadata`` holds every table, ``tables`` the entity ones."""

    metadata: sa.MetaData
    tables: Mapping[str, sa.Table]  # entity name -> table

    def table(self, entity: str | Entity) -> sa.Table:
        """The table of an entity (by name or object)."""
        name = entity.name if isinstance(entity, Entity) else entity
        return self.tables[name]

    @property
    def table_names(self) -> tuple[str, ...]:
        """Every table this schema manages, entity and system tables, sorted."""
        return tuple(sorted(self.metadata.tables))


def build_schema(app: App) -> Schema:
    """Build the tables of every entity of ``app`` plus Formwork's system tables.

    The App must contain the built-in ``user`` entity (the metadata compiler always adds it):
    every table's ``created_by`` / ``updated_by`` refer to it.
    """
    return _SchemaBuilder(app).build()


class _SchemaBuilder:
    """Builds a Schema; ``table_name`` and ``column_name`` let the planner build the same
    shape under the names a table and its columns had before declared renames."""

    def __init__(
        self,
        app: App,
        table_name: Callable[[Entity], str] | None = None,
        column_name: Callable[[Entity, str], str] | None = None,
    ) -> None:
        if "user" not in app.entities:
            raise ValueError("the App has no built-in 'user' entity; compile it with the metadata compiler")
        self.app = app
        self.table_name = table_name or (lambda entity: entity.table)
        self.column_name = column_name or (lambda entity, column: column)
        self.metadata = sa.MetaData()
        self.parents = _child_parents(app)

    def build(self) -> Schema:
        user_table = self.table_name(self.app.entities["user"])
        tables = {name: self._entity_table(entity, user_table) for name, entity in self.app.entities.items()}
        self._system_tables(user_table)
        return Schema(metadata=self.metadata, tables=tables)

    def _col(self, entity: Entity, name: str) -> str:
        return self.column_name(entity, name)

    def _entity_table(self, entity: Entity, user_table: str) -> sa.Table:
        # Names of constraints and indexes come from the target names, so after a rename
        # the planner sees which of them must be renamed too.
        target = entity.table
        col = functools.partial(self._col, entity)
        items: list[sa.SchemaItem] = [
            sa.Column(col("id"), sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(col("created_at"), sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
            sa.Column(col("updated_at"), sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
            sa.Column(col("created_by"), sa.Integer, nullable=True),
            sa.Column(col("updated_by"), sa.Integer, nullable=True),
            sa.Column(col("version"), sa.Integer, nullable=False, server_default=sql_literal("1")),
            sa.PrimaryKeyConstraint(col("id"), name=object_name("pk", target)),
        ]
        # use_alter: links make cycles (fw_user <-> fw_department); sorting tables skips these
        # keys, and migrate adds them after creating every new table.
        for system in ("created_by", "updated_by"):
            items.append(
                sa.ForeignKeyConstraint(
                    [col(system)],
                    [f"{user_table}.id"],
                    ondelete="SET NULL",
                    name=object_name("fk", target, [system]),
                    use_alter=True,
                )
            )
        # "own" row rules and "my records" lists: created_by with id, for the newest first
        items.append(sa.Index(object_name("ix", target, ["created_by"]), col("created_by"), col("id")))
        # The compiler declares status as a choice field; an App built without it still gets the column.
        if entity.has_status and STATUS_FIELD not in entity.fields:
            items.append(sa.Column(col("status"), sa.String(40), nullable=True))
            items.append(sa.Index(object_name("ix", target, ["status"]), col("status")))
        if entity.is_child:
            items += self._child_columns(entity)
        if entity.builtin and entity.name == "user":
            items.append(sa.Column(col("password_hash"), sa.String(255), nullable=True))
        for fld in entity.stored_fields():
            items += self._field_items(entity, fld)
        for columns in entity.indexes:
            items.append(sa.Index(object_name("ix", target, columns), *[col(c) for c in columns]))
        for columns in entity.unique_together:
            items.append(sa.UniqueConstraint(*[col(c) for c in columns], name=object_name("uq", target, columns)))
        return sa.Table(self.table_name(entity), self.metadata, *_without_repeats(items))

    def _child_columns(self, entity: Entity) -> list[sa.SchemaItem]:
        target = entity.table
        col = functools.partial(self._col, entity)
        items: list[sa.SchemaItem] = [
            sa.Column(col("parent_id"), sa.Integer, nullable=True),
            sa.Column(col("parent_field"), sa.String(60), nullable=True),
            sa.Column(col("row_order"), sa.Integer, nullable=True),
            sa.Index(object_name("ix", target, ["parent_id"]), col("parent_id")),
        ]
        parents = self.parents.get(entity.name, set())
        # A foreign key can point at one table only; a child shared by several parents keeps
        # parent_id unconstrained and relies on parent_field to say whose row it is.
        if len(parents) == 1:
            parent = self.app.entities[next(iter(parents))]
            items.append(
                sa.ForeignKeyConstraint(
                    [col("parent_id")],
                    [f"{self.table_name(parent)}.{self._col(parent, 'id')}"],
                    ondelete="CASCADE",
                    name=object_name("fk", target, ["parent_id"]),
                    use_alter=True,
                )
            )
        return items

    def _field_items(self, entity: Entity, fld: Field) -> list[sa.SchemaItem]:
        target = entity.table
        name = self._col(entity, fld.name)
        nullable = not fld.required or fld.required_if is not None or fld.compute is not None
        items: list[sa.SchemaItem] = [
            sa.Column(name, column_type(fld), nullable=nullable, server_default=server_default(fld))
        ]
        if fld.type == "link" and fld.to in self.app.entities:
            linked = self.app.entities[fld.to]
            items.append(
                sa.ForeignKeyConstraint(
                    [name],
                    [f"{self.table_name(linked)}.{self._col(linked, 'id')}"],
                    ondelete="RESTRICT",
                    name=object_name("fk", target, [fld.name]),
                    use_alter=True,
                )
            )
        if fld.type == "choice" and fld.options:
            allowed = sa.column(name).in_(list(fld.option_values))
            items.append(sa.CheckConstraint(allowed, name=check_name(target, fld.name, fld.option_values)))
        if fld.unique:
            items.append(sa.UniqueConstraint(name, name=object_name("uq", target, [fld.name])))
        if fld.type == "link" and not fld.unique:
            # (link, id): "this department's records, newest first" -- how row rules and
            # filtered lists read -- walks the index alone instead of the whole table
            items.append(sa.Index(object_name("ix", target, [fld.name]), name, self._col(entity, "id")))
        elif fld.index and not fld.unique:
            items.append(sa.Index(object_name("ix", target, [fld.name]), name))
        return items

    def _system_tables(self, user_table: str) -> None:
        # Imported here: the security package imports the record service, which imports storage.
        from formwork.security.tables import add_security_tables

        md = self.metadata
        add_security_tables(md, user_table)
        now = sa.func.current_timestamp()
        sa.Table(
            "fw_metadata_state",
            md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("metadata_hash", sa.String(64), nullable=False),
            sa.Column("app_version", sa.String(60), nullable=True),
            sa.Column("git_commit", sa.String(64), nullable=True),
            sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
            sa.Column("formwork_version", sa.String(40), nullable=True),
            sa.Column("managed_tables", sa.JSON, nullable=True),
            sa.Column("schema_fingerprint", sa.String(64), nullable=True),
            sa.Column("table_digests", sa.JSON, nullable=True),
        )
        sa.Table(
            "fw_user_role",
            md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("user_id", sa.Integer, nullable=False),
            sa.Column("role", sa.String(50), nullable=False),
            sa.ForeignKeyConstraint(["user_id"], [f"{user_table}.id"], ondelete="CASCADE", name="fk_fw_user_role_user_id"),
            sa.UniqueConstraint("user_id", "role", name="uq_fw_user_role_user_id_role"),
        )
        sa.Table(
            "fw_audit",
            md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("entity", sa.String(60), nullable=False),
            sa.Column("record_id", sa.Integer, nullable=True),
            sa.Column("action", sa.String(40), nullable=False),
            sa.Column("channel", sa.String(40), nullable=True),
            sa.Column("user_id", sa.Integer, nullable=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=now),
            sa.Column("changes", sa.JSON, nullable=True),
            sa.ForeignKeyConstraint(["user_id"], [f"{user_table}.id"], ondelete="SET NULL", name="fk_fw_audit_user_id"),
            sa.Index("ix_fw_audit_entity_record_id", "entity", "record_id"),
        )
        sa.Table(
            "fw_event",
            md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("entity", sa.String(60), nullable=False),
            sa.Column("record_id", sa.Integer, nullable=True),
            sa.Column("event", sa.String(60), nullable=False),
            sa.Column("payload", sa.JSON, nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
            sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("attempts", sa.Integer, nullable=False, server_default=sql_literal("0")),
            sa.Index("ix_fw_event_delivered_at", "delivered_at"),
        )
        sa.Table(
            "fw_number_sequence",
            md,
            sa.Column("name", sa.String(100), primary_key=True),
            sa.Column("period", sa.String(20), primary_key=True),
            sa.Column("last_value", sa.Integer, nullable=False, server_default=sql_literal("0")),
        )
        add_workflow_tables(md, user_table)


def check_name(table: str, field: str, options: tuple[str, ...]) -> str:
    """The name of the CHECK constraint that limits a choice field to its options.

    The name ends in a short hash of the options: databases report CHECK constraints in
    their own spelling, so a changed option list is recognised by its changed name.
    """
    digest = hashlib.sha1("\x1f".join(options).encode()).hexdigest()[:6]
    return object_name("ck", table, [field, digest])


def column_type(fld: Field) -> sa.types.TypeEngine:
    """The SQL type of a stored field."""
    kind = fld.type
    if kind == "string":
        return sa.String(fld.max_length or DEFAULT_STRING_LENGTH)
    if kind == "text":
        return sa.Text()
    if kind in ("integer", "link"):
        return sa.Integer()
    if kind == "decimal":
        precision, scale = fld.digits or DEFAULT_DIGITS
        return sa.Numeric(precision, scale)
    if kind == "boolean":
        return sa.Boolean()
    if kind == "date":
        return sa.Date()
    if kind == "datetime":
        return sa.DateTime(timezone=True)
    if kind == "choice":
        longest = max((len(v) for v in fld.option_values), default=0)
        return sa.String(max(longest, MIN_CHOICE_LENGTH))
    if kind == "file":
        return sa.String(500)
    if kind == "email":
        return sa.String(254)
    if kind == "json":
        return sa.JSON()
    raise ValueError(f"field {fld.name!r} has type {kind!r}, which has no column")


def server_default(fld: Field) -> sa.sql.ClauseElement | str | None:
    """The column's server default: only literal defaults; expressions are the record service's job."""
    value = fld.default
    if value is None or fld.default_is_expression:
        return None
    if isinstance(value, bool):
        return sa.true() if value else sa.false()
    if isinstance(value, int | float | Decimal):
        return sql_literal(str(value))
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _without_repeats(items: list[sa.SchemaItem]) -> list[sa.SchemaItem]:
    """Drop indexes and constraints whose name came earlier (``index: true`` plus ``indexes: [[f]]``)."""
    seen: set[str] = set()
    kept = []
    for item in items:
        name = getattr(item, "name", None) if isinstance(item, sa.Index | sa.Constraint) else None
        if name is not None and name in seen:
            continue
        if name is not None:
            seen.add(name)
        kept.append(item)
    return kept


@functools.lru_cache(maxsize=512)
def sql_literal(text: str) -> sa.TextClause:
    """A literal SQL default such as ``1``; shared, because building a text clause is slow."""
    return sa.text(text)


def _child_parents(app: App) -> dict[str, set[str]]:
    """child entity name -> names of the entities that hold its rows in a table field."""
    parents: dict[str, set[str]] = {}
    for entity in app.entities.values():
        for fld in entity.fields.values():
            if fld.type == "table" and fld.entity:
                parents.setdefault(fld.entity, set()).add(entity.name)
    return parents
