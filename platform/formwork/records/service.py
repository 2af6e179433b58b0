"""``RecordService``: the one write path of Formwork.

REST, screens, import, workflow actions, plugins and seed data all create, update and
delete records here, so every write gets the same checks, hooks, versioning, audit
trail and events, in one transaction. docs/records.md describes the steps of a save
in order; each step lives in its own module of this package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from formwork.expressions import ExpressionError, parse
from formwork.metadata.model import APPROVAL_STATUSES, STATUS_FIELD, App, Approval, Entity, Field
from formwork.plugins import HookRegistry
from formwork.records import journal, persist
from formwork.records.actor import Actor
from formwork.records.bulk import BatchCreate, takes_batch_path
from formwork.records.coerce import WrongType, coerce_id, coerce_value, fit_decimal, is_empty, to_utc
from formwork.records.errors import (
    RECORD,
    FieldError,
    PermissionDenied,
    RecordInvalid,
    RecordNotFound,
    StaleVersion,
)
from formwork.records.formulas import Formulas
from formwork.records.hooks import HookContext, call_hook
from formwork.records.intake import ROW_ID, USER_CHANNELS, WORKFLOW_CHANNEL, Intake, read_values
from formwork.records.listing import count_rows, list_rows
from formwork.records.locks import FlowGuard, Unlocked, delete_refused, locked_changes
from formwork.records.numbering import next_number
from formwork.records.policy import Access, AllowAll, RecordPolicy
from formwork.records.query import RecordQuery
from formwork.records.rows import lookup_in, read_record
from formwork.records.rules import RowScope, Validation, entity_label
from formwork.storage import Schema

log = logging.getLogger(__name__)

CHANNELS = ("api", "screen", "import", "workflow", "plugin", "seed", "cli")
# Channels where a person supplies the values: the field rules of their roles apply there.
PERSON_CHANNELS = frozenset({"api", "screen", "import"})
# The initial status of a record under an approval (a workflow names its own).
APPROVAL_INITIAL = APPROVAL_STATUSES[0]


class RecordService:
    """Creates, updates, deletes and reads the records of ``app`` in ``engine``'s database.

    ``hooks`` resolves the plugin hooks metadata names; ``clock`` gives "now" (UTC) for
    timestamps, defaults and numbers; ``policy`` decides what an actor may do (every
    actor may do everything until the security stage passes its policy); ``flows`` says
    which fields a record's workflow or approval locks or hides now (the app wiring
    passes the workflow stage's guard; by default nothing is locked)."""

    def __init__(
        self,
        app: App,
        schema: Schema,
        engine: sa.Engine,
        hooks: HookRegistry | None = None,
        clock: Callable[[], datetime] | None = None,
        policy: RecordPolicy | None = None,
        flows: FlowGuard | None = None,
    ) -> None:
        self.app = app
        self.schema = schema
        self.engine = engine
        self.hooks = hooks
        self.clock = clock or (lambda: datetime.now(UTC))
        self.policy: RecordPolicy = policy or AllowAll()
        self.flows: FlowGuard = flows or Unlocked()
        self.tables = schema.tables
        self._audit = schema.metadata.tables["fw_audit"]
        self._events = schema.metadata.tables["fw_event"]
        self._sequences = schema.metadata.tables["fw_number_sequence"]
        self._formulas = Formulas(app)
        # The connection of the transaction in progress in this thread/task, so a hook that
        # writes through the service joins the transaction of the write that called it.
        self._active: ContextVar[sa.Connection | None] = ContextVar(f"formwork_records_{id(self)}", default=None)

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction for every service call inside the block (and the caller's own
        statements on the yielded connection): all of it commits, or none of it.

        Inside a transaction already open in this thread, joins it. On SQLite the write
        lock is taken at BEGIN, so two writers never meet half-way."""
        active = self._active.get()
        if active is not None:
            yield active
            return
        with self.engine.connect() as conn:
            conn.execution_options(formwork_begin_immediate=True)
            with conn.begin():
                token = self._active.set(conn)
                try:
                    yield conn
                finally:
                    self._active.reset(token)

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        active = self._active.get()
        if active is not None:
            yield active
            return
        with self.engine.connect() as conn:
            yield conn

    # ----------------------------------------------------------------- reads

    def get(self, entity: str, record_id: int, actor: Actor) -> dict[str, Any]:
        """The record with its child rows nested; ``RecordNotFound`` when it does not exist
        or the actor may not see it."""
        ent = self._entity(entity)
        self.policy.authorize("read", entity, actor, None, None)
        with self._reading() as conn:
            record = read_record(conn, self.app, self.tables, ent, record_id)
            visible = record is not None and self._visible(conn, ent, record_id, actor)
            shown = self._shown(conn, ent, [record], actor, within_rows=True) if visible else []
        if not shown:
            raise RecordNotFound(entity, record_id)
        return shown[0]

    def list(self, entity: str, actor: Actor, query: RecordQuery) -> list[dict[str, Any]]:
        """Records matching ``query`` (without child rows), as the actor may see them: rows
        outside the actor's row rules are left out, hidden fields removed; filtering, searching
        or sorting by a hidden field is refused (``RecordInvalid``, code ``hidden``)."""
        ent = self._entity(entity)
        self.policy.authorize("read", entity, actor, None, None)
        query = self._without_hidden(ent, actor, query)
        table = self.tables[ent.name]
        with self._reading() as conn:
            rows = list_rows(conn, self.app, self.tables, ent, query, self.policy.row_filter(entity, actor, table), actor, to_utc(self.clock()))
            return self._shown(conn, ent, rows, actor, within_rows=True)

    def check_hidden(self, entity: str, actor: Actor, query: RecordQuery) -> None:
        """``RecordInvalid`` (code ``hidden``) when ``query`` filters, searches or sorts by a
        field hidden from the actor, for code that builds its own query (exports)."""
        self._without_hidden(self.app.entity(entity), actor, query)

    def count(self, entity: str, actor: Actor, query: RecordQuery) -> int:
        """How many records match ``query``'s filters and search (sort and paging ignored)."""
        ent = self._entity(entity)
        self.policy.authorize("read", entity, actor, None, None)
        query = self._without_hidden(ent, actor, query)
        table = self.tables[ent.name]
        with self._reading() as conn:
            return count_rows(conn, self.app, self.tables, ent, query, self.policy.row_filter(entity, actor, table), actor, to_utc(self.clock()))

    # ----------------------------------------------------------------- writes

    def create(self, entity: str, values: Mapping[str, Any], actor: Actor, channel: str) -> dict[str, Any]:
        """Create a record from ``values`` and return it as stored (with id, version 1,
        number, computed fields and child rows). ``RecordInvalid`` lists every problem."""
        ent = self._entity(entity)
        self.policy.authorize("create", entity, actor, channel, None)
        with self.transaction() as conn:
            if takes_batch_path(self.app, ent):
                saved = BatchCreate(self, conn, ent, actor, channel).one(values)
            else:
                saved = self._create(conn, ent, values, actor, channel)
            shown = self._shown(conn, ent, [saved], actor)
        return shown[0] if shown else {"id": saved["id"], "version": saved["version"]}

    def create_many(self, entity: str, rows: Iterable[Mapping[str, Any]], actor: Actor, channel: str) -> int:
        """Create every row in one transaction and return how many; on any problem nothing
        is written and ``RecordInvalid`` lists the errors of every row (``FieldError.row``).

        Rows of most entities are validated and written a chunk at a time (``bulk``); those
        with hooks, child tables or links to their own entity one at a time."""
        ent = self._entity(entity)
        self.policy.authorize("create", entity, actor, channel, None)
        with self.transaction() as conn:
            if takes_batch_path(self.app, ent):
                return BatchCreate(self, conn, ent, actor, channel).run(rows)
            errors: list[FieldError] = []
            created = 0
            for index, values in enumerate(rows):
                try:
                    self._create(conn, ent, values, actor, channel)
                except RecordInvalid as invalid:
                    errors += [replace(e, row=index) for e in invalid.errors]
                    if isinstance(invalid.__cause__, sa.exc.IntegrityError):
                        break  # the database refused a statement: this transaction is over
                else:
                    created += 1
            if errors:
                raise RecordInvalid(errors)
            return created

    def update(self, entity: str, record_id: int, values: Mapping[str, Any], actor: Actor, channel: str, version: int | None) -> dict[str, Any]:
        """Change the given fields of a record and return it as stored.

        ``version`` is the version the caller read (required from api and screen): when the
        record has changed since, ``StaleVersion`` tells the current one and nothing is written.
        A table field given replaces the rows: rows with an ``id`` are kept and updated,
        rows without are added, rows left out are deleted."""
        ent = self._entity(entity)
        self.policy.authorize("update", entity, actor, channel, None)
        with self.transaction() as conn:
            saved = self._update(conn, ent, record_id, values, actor, channel, version)
            shown = self._shown(conn, ent, [saved], actor)
        return shown[0] if shown else {"id": saved["id"], "version": saved["version"]}

    def delete(self, entity: str, record_id: int, actor: Actor, channel: str, version: int | None = None) -> None:
        """Delete a record and its child rows; the audit trail keeps a full snapshot.
        Refused (``RecordInvalid``, code in_use) while other records link to it."""
        ent = self._entity(entity)
        self.policy.authorize("delete", entity, actor, channel, None)
        with self.transaction() as conn:
            self._delete(conn, ent, record_id, actor, channel, version)

    # ----------------------------------------------------------------- the steps

    def _create(self, conn: sa.Connection, ent: Entity, values: Mapping[str, Any], actor: Actor, channel: str) -> dict[str, Any]:
        now = to_utc(self.clock())
        hidden, locked = self._field_locks(ent, self.policy.accesses(ent.name, actor, self.tables[ent.name], "create"), channel)
        intake = read_values(self.app, ent, values, channel, None, hidden=hidden, locked=locked)
        record = self._with_defaults(conn, ent, intake.values, actor, now)
        if ent.has_status and record.get(STATUS_FIELD) is None:
            record[STATUS_FIELD] = self._initial_status(ent)
        for name, child_name, rows in self._table_fields(ent, intake):
            child = self.app.entity(child_name)
            record[name] = [self._with_defaults(conn, child, row, actor, now) for row in rows]
        ctx = HookContext(actor, self.app, channel, None, self, ent.name)
        number_field = ent.number.field if ent.number else None
        self._check(conn, ent, record, intake, ctx, now, RowScope(), number_field)
        self._hook(ent, "before_save", record, ctx)
        if ent.number and is_empty(record.get(ent.number.field)):
            record[ent.number.field] = next_number(conn, self._sequences, ent.number, now.date())
        # the inserts return the rows as stored (as a read would give them): nothing to re-read
        saved = persist.insert_record(conn, self.tables[ent.name], ent, record, actor, now)
        record_id = saved["id"]
        for name, child_name, _rows in self._table_fields(ent, None):
            saved[name] = persist.insert_rows(conn, self.tables, name, self.app.entity(child_name), record_id, record[name], actor, now)
        if not self._reaches(conn, ent, record_id, actor, "create"):
            raise PermissionDenied("create", ent.name, f"you may not create this {ent.name} record: it falls outside the records your roles let you create")
        self._journal(conn, ent, record_id, "create", "created", channel, actor, now, None, saved)
        self._hook(ent, "after_save", saved, ctx)
        return saved

    def _update(self, conn: sa.Connection, ent: Entity, record_id: int, values: Mapping[str, Any], actor: Actor, channel: str, version: int | None) -> dict[str, Any]:
        now = to_utc(self.clock())
        old = read_record(conn, self.app, self.tables, ent, record_id)
        # The workflow engine writes what a transition's roles or an approver's task allowed
        # (it decided who may act): the user's row rules do not limit its write.
        by_workflow = channel == WORKFLOW_CHANNEL
        if old is None or not (by_workflow or self._visible(conn, ent, record_id, actor)):
            raise RecordNotFound(ent.name, record_id)
        self.policy.authorize("update", ent.name, actor, channel, old)
        granted = [] if by_workflow else self._matching(conn, ent, [record_id], actor, "update")[record_id]
        if not granted and not by_workflow:
            raise PermissionDenied("update", ent.name, f"you may not update this {ent.name} record")
        version = _read_version(version)
        if version is None and channel in USER_CHANNELS:
            raise RecordInvalid([FieldError("version", "version_required", "is required: send the version you loaded, so nobody's changes are overwritten")])
        if version is not None and version != old["version"]:
            raise StaleVersion(ent.name, record_id, old["version"])
        hidden, locked = self._field_locks(ent, granted, channel)
        intake = read_values(self.app, ent, values, channel, old, hidden=hidden, locked=locked)
        # copies: hooks may change the record, ``old`` must stay what was stored
        record = {k: [dict(r) for r in v] if isinstance(v, list) and k in ent.fields else v for k, v in old.items()}
        record.update(intake.values)
        for name, child_name, rows in self._table_fields(ent, intake):
            if name in intake.rows:
                record[name] = self._merge_rows(conn, self.app.entity(child_name), name, old[name], rows, intake, actor, now)
        if channel in PERSON_CHANNELS:
            self._refuse_locked(conn, ent, old, record, intake, actor)
        ctx = HookContext(actor, self.app, channel, old, self, ent.name)
        self._check(conn, ent, record, intake, ctx, now, RowScope(record_id), None)
        self._hook(ent, "before_save", record, ctx)
        table = self.tables[ent.name]
        columns = persist.column_values(ent, record)
        changed = {k: v for k, v in columns.items() if old.get(k) != v}
        tables_changed = [name for name, _c, _r in self._table_fields(ent, None) if _rows_differ(old[name], record[name])]
        if not changed and not tables_changed:
            return old
        if not persist.update_row(conn, table, ent, record_id, old["version"], changed, record, actor, now):
            current = conn.execute(sa.select(table.c.version).where(table.c.id == record_id)).scalar()
            if current is None:
                raise RecordNotFound(ent.name, record_id)
            raise StaleVersion(ent.name, record_id, int(current))
        for name in tables_changed:
            child = self.app.entity(ent.fields[name].entity or "")
            persist.replace_rows(conn, self.tables, name, child, record_id, old[name], record[name], actor, now)
        if not by_workflow and not self._reaches(conn, ent, record_id, actor, "update"):
            raise PermissionDenied("update", ent.name, f"you may not make this change: the {ent.name} record would fall outside the records your roles let you update")
        saved = self._reread(conn, ent, record_id)
        self._journal(conn, ent, record_id, "update", "updated", channel, actor, now, old, saved)
        self._hook(ent, "after_save", saved, ctx)
        return saved

    def _delete(self, conn: sa.Connection, ent: Entity, record_id: int, actor: Actor, channel: str, version: int | None) -> None:
        now = to_utc(self.clock())
        old = read_record(conn, self.app, self.tables, ent, record_id)
        if old is None or not self._visible(conn, ent, record_id, actor):
            raise RecordNotFound(ent.name, record_id)
        self.policy.authorize("delete", ent.name, actor, channel, old)
        if not self._reaches(conn, ent, record_id, actor, "delete"):
            raise PermissionDenied("delete", ent.name, f"you may not delete this {ent.name} record")
        version = _read_version(version)
        if version is not None and version != old["version"]:
            raise StaleVersion(ent.name, record_id, old["version"])
        lock = self.flows.lock(conn, ent.name, old, actor)
        if lock is not None and not lock.deletable:
            raise RecordInvalid([delete_refused(lock)])
        ctx = HookContext(actor, self.app, channel, old, self, ent.name)
        self._hook(ent, "before_delete", dict(old), ctx)
        self._refuse_if_referenced(conn, ent, record_id)
        persist.delete_rows(conn, self.tables, ent, record_id)
        table = self.tables[ent.name]
        try:
            deleted = conn.execute(table.delete().where(table.c.id == record_id, table.c.version == old["version"])).rowcount
        except sa.exc.IntegrityError as error:
            raise RecordInvalid([FieldError(RECORD, "in_use", "cannot be deleted: other records refer to it")]) from error
        if deleted != 1:
            current = conn.execute(sa.select(table.c.version).where(table.c.id == record_id)).scalar()
            if current is None:
                raise RecordNotFound(ent.name, record_id)
            raise StaleVersion(ent.name, record_id, int(current))
        self._journal(conn, ent, record_id, "delete", "deleted", channel, actor, now, old, None)
        self._hook(ent, "after_delete", dict(old), ctx)

    # ----------------------------------------------------------------- helpers

    def _refuse_locked(self, conn: sa.Connection, ent: Entity, old: dict[str, Any], record: dict[str, Any], intake: Intake, actor: Actor) -> None:
        """``RecordInvalid`` (code ``locked``) when the person changes a field the record's
        flow locks now. Values given unchanged pass: a form sends every field back."""
        changed = [k for k in intake.values if old.get(k) != record.get(k)]
        changed += [name for name in intake.rows if _rows_differ(old[name], record[name])]
        lock = self.flows.lock(conn, ent.name, old, actor) if changed else None
        errors = locked_changes(lock, changed) if lock is not None else []
        if errors:
            raise RecordInvalid(errors)

    def _entity(self, name: str) -> Entity:
        entity = self.app.entities.get(name)
        if entity is None:
            raise LookupError(f"no entity named {name!r}")
        return entity

    def _visible(self, conn: sa.Connection, ent: Entity, record_id: int, actor: Actor) -> bool:
        table = self.tables[ent.name]
        limit = self.policy.row_filter(ent.name, actor, table)
        if limit is None:
            return True
        return conn.execute(sa.select(table.c.id).where(table.c.id == record_id, limit)).first() is not None

    def _matching(self, conn: sa.Connection, ent: Entity, record_ids: list[int], actor: Actor, action: str) -> dict[int, list[Access]]:
        """record id -> the accesses of ``action`` whose rows include that record (one query)."""
        table = self.tables[ent.name]
        accesses = self.policy.accesses(ent.name, actor, table, action)
        if not record_ids or all(a.rows is None for a in accesses):
            return {record_id: list(accesses) for record_id in record_ids}
        flags = [sa.case((a.rows, 1), else_=0) if a.rows is not None else sa.literal(1) for a in accesses]
        query = sa.select(table.c.id, *[flag.label(f"a{n}") for n, flag in enumerate(flags)]).where(table.c.id.in_(record_ids))
        found: dict[int, list[Access]] = {record_id: [] for record_id in record_ids}
        for row in conn.execute(query):
            found[row[0]] = [a for a, flag in zip(accesses, row[1:], strict=True) if flag]
        return found

    def _reaches(self, conn: sa.Connection, ent: Entity, record_id: int, actor: Actor, action: str) -> bool:
        """True when some grant of ``action`` covers the record as it is now in ``conn``."""
        return bool(self._matching(conn, ent, [record_id], actor, action)[record_id])

    def _shown(self, conn: sa.Connection, ent: Entity, records: list[dict[str, Any]], actor: Actor, within_rows: bool = False) -> list[dict[str, Any]]:
        """``records`` the actor may read, each without the fields hidden from them there;
        ``within_rows`` when the records were selected with the actor's row filter already.

        A field is hidden on a record when every read grant covering that record hides it."""
        table = self.tables[ent.name]
        accesses = self.policy.accesses(ent.name, actor, table, "read")
        if not accesses:
            return []
        if ent.has_status:
            # a step's hidden fields are left out for its approvers (docs/workflow.md)
            by_flow = self.flows.hidden(conn, ent.name, records, actor)
            records = [_without(r, by_flow[r["id"]]) if r["id"] in by_flow else r for r in records]
        if len({a.hidden for a in accesses}) == 1 and (within_rows or all(a.rows is None for a in accesses)):
            hidden = accesses[0].hidden
            return [_without(record, hidden) for record in records]
        granted = self._matching(conn, ent, [r["id"] for r in records], actor, "read")
        return [_without(r, frozenset.intersection(*[a.hidden for a in granted[r["id"]]])) for r in records if granted.get(r["id"])]

    def _field_locks(self, ent: Entity, granted: Iterable[Access], channel: str) -> tuple[frozenset[str], frozenset[str]]:
        """(hidden, read-only) fields for values a person gives on ``channel``: a field is
        writable when one of the ``granted`` accesses leaves it writable."""
        granted = list(granted)
        if channel not in PERSON_CHANNELS or not granted:
            return frozenset(), frozenset()
        hidden = frozenset.intersection(*[a.hidden for a in granted])
        locked = frozenset.intersection(*[a.hidden | a.read_only for a in granted]) - hidden
        return hidden, locked

    def _without_hidden(self, ent: Entity, actor: Actor, query: RecordQuery) -> RecordQuery:
        """``query`` with hidden fields left out of the default search; ``RecordInvalid`` when it
        filters, searches or sorts by a field hidden from the actor (here or through a link)."""
        hidden = self.policy.hidden_fields(ent.name, actor)
        errors: list[FieldError] = []

        def refuse(name: str, what: str, field: str) -> None:
            errors.append(FieldError(field, "hidden", f"cannot {what} by '{name}': it is hidden from you"))

        named = [(n, "filter") for n in query.filters] + [(c.field, "filter") for c in query.conditions]
        named += [(key.lstrip("-+"), "sort") for key in query.sort] + [(n, "search") for n in query.search_fields]
        for name, what in named:
            if name in hidden:
                refuse(name, what, name)
        if query.expression:
            for path in _expression_paths(query.expression):
                if self._path_hidden(ent, path, actor):
                    refuse(path, "filter", "filter")
        if errors:
            raise RecordInvalid(errors)
        if query.search and not query.search_fields and hidden:
            fields = tuple(f for f in _default_search(self.app, ent) if f not in hidden)
            if not fields:
                raise RecordInvalid([FieldError("search", "hidden", "cannot search: the fields a search looks into are hidden from you")])
            return replace(query, search_fields=fields)
        return query

    def _path_hidden(self, ent: Entity, path: str, actor: Actor) -> bool:
        """True when a step of a field path (``requester.phone``) is hidden from the actor."""
        entity = ent
        for part in path.split("."):
            if part in self.policy.hidden_fields(entity.name, actor):
                return True
            fld = entity.fields.get(part)
            target = fld.to if fld is not None and fld.type == "link" else fld.entity if fld is not None and fld.type == "table" else None
            if target is None or target not in self.app.entities:
                return False
            entity = self.app.entities[target]
        return False

    def _reread(self, conn: sa.Connection, ent: Entity, record_id: int) -> dict[str, Any]:
        record = read_record(conn, self.app, self.tables, ent, record_id)
        assert record is not None, "a row written in this transaction is readable in it"
        return record

    def _table_fields(self, ent: Entity, intake: Intake | None) -> list[tuple[str, str, list[dict[str, Any]]]]:
        """(field, child entity, rows given) for every table field of ``ent``."""
        return [
            (f.name, f.entity or "", intake.rows.get(f.name, []) if intake else [])
            for f in ent.fields.values()
            if f.type == "table" and f.entity
        ]

    def _initial_status(self, ent: Entity) -> str | None:
        flow = self.app.flow_for(ent.name)
        if flow is None:
            return None
        return APPROVAL_INITIAL if isinstance(flow, Approval) else flow.initial

    def _with_defaults(self, conn: sa.Connection, ent: Entity, given: Mapping[str, Any], actor: Actor, now: datetime) -> dict[str, Any]:
        """``given`` plus each empty field's default (a literal or an expression)."""
        record = dict(given)
        for fld in ent.stored_fields():
            if record.get(fld.name) is not None or fld.default is None:
                record.setdefault(fld.name, None)
                continue
            record[fld.name] = self._default_of(conn, ent, fld, record, actor, now)
        return record

    def _default_of(self, conn: sa.Connection, ent: Entity, fld: Field, record: Mapping[str, Any], actor: Actor, now: datetime) -> Any:
        value = fld.default
        if fld.default_is_expression:
            text = str(value)
            text = text[1:] if text.startswith("=") else text
            value = self._formulas.evaluate(ent.name, text, record, actor, now, lookup_in(conn, self.app, self.tables))
        try:
            return coerce_value(fld, value)
        except WrongType:
            log.warning("default of %s does not fit its type (%r); left empty", fld.name, value)
            return None

    def _merge_rows(self, conn: sa.Connection, child: Entity, name: str, old_rows: list[dict[str, Any]], rows: list[dict[str, Any]], intake: Intake, actor: Actor, now: datetime) -> list[dict[str, Any]]:
        """The new rows of a table field: given rows with an ``id`` update that stored row,
        the others are new rows with defaults."""
        stored = {row["id"]: row for row in old_rows}
        merged: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            row_id = row.get(ROW_ID)
            if row_id is None:
                merged.append(self._with_defaults(conn, child, row, actor, now))
            elif row_id in stored:
                merged.append({**stored[row_id], **row})
            else:
                intake.refuse(f"{name}[{index}].id", "row", f"is not a row of this record (id {row_id})")
                merged.append(self._with_defaults(conn, child, {k: v for k, v in row.items() if k != ROW_ID}, actor, now))
        return merged

    def _check(self, conn: sa.Connection, ent: Entity, record: dict[str, Any], intake: Intake, ctx: HookContext, now: datetime, scope: RowScope, filled_later: str | None) -> None:
        """before_validate, computed fields, then every rule; raises ``RecordInvalid`` with
        all problems found (the input's own included)."""
        errors = list(intake.errors)
        try:
            self._hook(ent, "before_validate", record, ctx)
        except RecordInvalid as refused:
            errors += refused.errors
        errors += self._compute(conn, ent, record, ctx, now)
        later = frozenset({(ent.name, filled_later)} if filled_later else ())
        validation = Validation(self.app, self.tables, conn, self._formulas, self.hooks, ctx, ctx.user, now, later)
        errors += validation.errors_of(ent, record, scope, intake.bad)
        if errors:
            raise RecordInvalid(_unique_errors(errors))

    def _compute(self, conn: sa.Connection, ent: Entity, record: dict[str, Any], ctx: HookContext, now: datetime, prefix: str = "") -> list[FieldError]:
        """Fill computed fields: child rows first (a total may sum them), then the record's
        own in declaration order (one may use another computed before it)."""
        errors: list[FieldError] = []
        for name, child_name, _rows in self._table_fields(ent, None):
            child = self.app.entity(child_name)
            for index, row in enumerate(record.get(name) or []):
                errors += self._compute(conn, child, row, ctx, now, f"{prefix}{name}[{index}].")
        for fld in ent.stored_fields():
            if fld.compute is None and fld.compute_hook is None:
                continue
            try:
                if fld.compute_hook:
                    value = call_hook(self.hooks, fld.compute_hook, record, replace(ctx, entity=ent.name, field=fld.name), fld.name)
                else:
                    lookup = lookup_in(conn, self.app, self.tables)
                    value = self._formulas.evaluate(ent.name, fld.compute or "", record, ctx.user, now, lookup)
                record[fld.name] = _fit(fld, value)
            except RecordInvalid as refused:
                errors += [replace(e, field=f"{prefix}{e.field}") for e in refused.errors]
            except WrongType as wrong:
                log.warning("computed field %s.%s gave %r: %s", ent.name, fld.name, value, wrong.message)
                errors.append(FieldError(f"{prefix}{fld.name}", "compute", "could not be computed from the other fields"))
        return errors

    def _hook(self, ent: Entity, point: str, record: dict[str, Any], ctx: HookContext) -> None:
        name = ent.hooks.get(point)
        if name:
            call_hook(self.hooks, name, record, ctx)

    def _refuse_if_referenced(self, conn: sa.Connection, ent: Entity, record_id: int) -> None:
        """Refuse to delete a record other records link to, saying which ones."""
        users: list[str] = []
        for other in self.app.entities.values():
            table = self.tables[other.name]
            for fld in other.stored_fields():
                if fld.type != "link" or fld.to != ent.name:
                    continue
                query = sa.select(sa.func.count()).select_from(table).where(table.c[fld.name] == record_id)
                if other.name == ent.name:
                    query = query.where(table.c.id != record_id)
                found = conn.execute(query).scalar_one()
                if found:
                    users.append(f"{found} {entity_label(other)} ({fld.name})")
        if users:
            raise RecordInvalid([FieldError(RECORD, "in_use", "cannot be deleted: still used by " + ", ".join(users))])

    def _journal(self, conn: sa.Connection, ent: Entity, record_id: int, action: str, event: str, channel: str, actor: Actor, now: datetime, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """The audit row and the outgoing event of one write."""
        if old is None and new is not None:
            # a create lists every value with one: made JSON-safe once for both rows
            record: dict[str, Any] = journal.json_safe(new)
            changes = journal.creation_changes(record)
        else:
            shown = list(new or old or {})
            if old is not None and new is not None:
                # who and when are columns of the audit row itself
                shown = [k for k in shown if k not in ("version", "updated_at", "updated_by")]
            changes = journal.changes_between(old, new, shown)
            record = journal.json_safe(new if new is not None else old)
        journal.write_audit(conn, self._audit, entity=ent.name, record_id=record_id, action=action, channel=channel, actor=actor, at=now, changes=changes)
        payload = {"record": record, "changes": changes, "channel": channel, "user_id": actor.user_id}
        journal.write_event(conn, self._events, entity=ent.name, record_id=record_id, action=event, at=now, payload=payload, safe=True)


def _without(record: dict[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    """``record`` without the ``hidden`` fields."""
    return {k: v for k, v in record.items() if k not in hidden} if hidden else record


def _expression_paths(text: str) -> tuple[str, ...]:
    """The field paths a ``filter=`` expression names (none when it does not parse: the
    listing reports that)."""
    try:
        return parse(text).field_paths()
    except ExpressionError:
        return ()


def _default_search(app: App, entity: Entity) -> tuple[str, ...]:
    """The fields a search looks into when the caller names none: the form's list search
    fields, else the title field."""
    form = app.form_for(entity.name)
    if form is not None and form.list is not None and form.list.search:
        return tuple(form.list.search)
    return (entity.title_field,) if entity.title_field else ()


def _read_version(version: Any) -> int | None:
    """The version a caller sent, which forms send as text."""
    try:
        return None if version is None or version == "" else coerce_id(version)
    except WrongType:
        raise RecordInvalid([FieldError("version", "type", "must be a whole number")]) from None


def _fit(fld: Field, value: Any) -> Any:
    """A computed value in the field's type; decimals rounded half-up to the field's scale."""
    typed = coerce_value(fld, value)
    return fit_decimal(fld, typed) if isinstance(typed, Decimal) else typed


def _rows_differ(old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]]) -> bool:
    if len(old_rows) != len(new_rows):
        return True
    return any(new.get("id") != old["id"] or any(new.get(k) != v for k, v in old.items()) for old, new in zip(old_rows, new_rows, strict=True))


def _unique_errors(errors: list[FieldError]) -> list[FieldError]:
    """``errors`` without repeats (a hook and a rule may report the same thing)."""
    seen: set[FieldError] = set()
    kept = []
    for error in errors:
        if error not in seen:
            seen.add(error)
            kept.append(error)
    return kept
