"""Creating many records at once: the steps of one create, with the database work of a
chunk of rows done together.

Every row is read, defaulted, computed and validated by the same code as a single
create. What changes is how the database is asked: link targets and unique values are
read with one ``IN`` query per field and chunk (a row also counts against the unique
values of the accepted rows before it, as if those were already stored), the rows are
inserted with one ``executemany`` whose ``RETURNING`` gives each row as stored (no
re-reading), and their audit and event rows are written with one statement each.

Only entities whose rows need nothing in between take this path: no before_validate,
before_save or after_save hook, no field validators or compute hooks (plugin code that
may read or write records), no table fields and no link to the entity itself (a row
may name one created just before it). The service saves the others row by row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from formwork.metadata.model import STATUS_FIELD, App, Entity
from formwork.records import journal, limits, persist
from formwork.records.actor import Actor
from formwork.records.coerce import is_empty, to_utc
from formwork.records.errors import FieldError, PermissionDenied, RecordInvalid
from formwork.records.hooks import HookContext
from formwork.records.intake import Intake, read_values
from formwork.records.numbering import next_number
from formwork.records.rows import record_columns, row_dict
from formwork.records.rules import RowScope, Validation

if TYPE_CHECKING:
    from formwork.records.service import RecordService

# Rows validated and inserted together: bounds the memory of a long iterable and the
# size of each IN list and executemany.
CHUNK = 1000
# Hook points called between the steps of each row's save.
ROW_HOOKS = ("before_validate", "before_save", "after_save")


def takes_batch_path(app: App, entity: Entity) -> bool:
    """True when rows of ``entity`` can be created a chunk at a time (see the module doc)."""
    if entity.is_child or any(entity.hooks.get(point) for point in ROW_HOOKS):
        return False
    for fld in entity.fields.values():
        if fld.type == "table" or fld.validators or fld.compute_hook:
            return False
        if fld.type == "link" and fld.to == entity.name:
            return False
    return True


@dataclass
class _Row:
    """One input row on its way: its position, typed values, record and time of save."""

    index: int
    intake: Intake
    record: dict[str, Any]
    now: datetime
    ctx: HookContext


class ChunkChecks:
    """Which link targets exist and which unique values are taken, for one chunk of rows.

    Filled with one query per link field and per unique field or set before the chunk is
    validated; ``accept`` adds the values of each row that passed, so later rows of the
    chunk repeating them are refused just as if that row were already stored."""

    def __init__(self, conn: sa.Connection, tables: Mapping[str, sa.Table], entity: Entity, records: list[dict[str, Any]]) -> None:
        self.conn = conn
        self.tables = tables
        self.entity = entity
        self.existing: dict[str, set[int]] = {}
        self.taken_values: dict[tuple[str, ...], set[tuple[Any, ...]]] = {}
        for fld in entity.stored_fields():
            if fld.type == "link" and fld.to:
                wanted = {r[fld.name] for r in records if isinstance(r.get(fld.name), int)}
                self.existing.setdefault(fld.to, set()).update(self._existing_ids(fld.to, wanted))
        for fields in unique_sets(entity):
            self.taken_values[fields] = self._stored_values(fields, records)

    def _existing_ids(self, target: str, wanted: set[int]) -> set[int]:
        if not wanted:
            return set()
        table = self.tables[target]
        return set(self.conn.execute(sa.select(table.c.id).where(table.c.id.in_(sorted(wanted)))).scalars())

    def _stored_values(self, fields: tuple[str, ...], records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        # values validation will refuse are never asked about, and the database may refuse
        # them in a query too (an integer beyond the column's range)
        wanted = {key for key in (_key(r, fields) for r in records) if key is not None and self._holdable(fields, key)}
        if not wanted:
            return set()
        table = self.tables[self.entity.name]
        columns = [table.c[f] for f in fields]
        condition = columns[0].in_([k[0] for k in wanted]) if len(columns) == 1 else sa.tuple_(*columns).in_(list(wanted))
        return {tuple(_cleaned(v) for v in row) for row in self.conn.execute(sa.select(*columns).where(condition))}

    def _holdable(self, fields: tuple[str, ...], key: tuple[Any, ...]) -> bool:
        """True when the columns of ``fields`` can hold the numbers in ``key``."""
        for name, value in zip(fields, key, strict=True):
            fld = self.entity.fields[name]
            bounds = limits.field_range(fld)
            if bounds is not None and isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
                return False
            digits = limits.decimal_digits(fld)
            if digits is not None and isinstance(value, Decimal) and (not value.is_finite() or value.adjusted() >= digits[0] - digits[1]):
                return False
        return True

    def exists(self, target: str, record_id: int) -> bool:
        """True when a ``target`` record has ``record_id`` (asked of the database when not known)."""
        known = self.existing.setdefault(target, set())
        if record_id in known:
            return True
        table = self.tables[target]
        found = self.conn.execute(sa.select(table.c.id).where(table.c.id == record_id)).first() is not None
        if found:
            known.add(record_id)
        return found

    def taken(self, fields: tuple[str, ...], record: Mapping[str, Any]) -> bool | None:
        """Whether a stored or accepted row has ``record``'s values in ``fields``; None when
        ``fields`` is not a unique set read for the chunk."""
        values = self.taken_values.get(fields)
        if values is None:
            return None
        return _key(record, fields) in values

    def accept(self, record: Mapping[str, Any]) -> None:
        """Count ``record``'s unique values as taken (it will be inserted)."""
        for fields, values in self.taken_values.items():
            key = _key(record, fields)
            if key is not None:
                values.add(key)


@dataclass
class ChunkValidation(Validation):
    """The rules of one record, with link existence and uniqueness of a new top-level
    record answered by the chunk's ``ChunkChecks``."""

    checks: ChunkChecks | None = None

    def _exists(self, target: str, record_id: int) -> bool:
        if self.checks is None:
            return super()._exists(target, record_id)
        return self.checks.exists(target, record_id)

    def _taken(self, entity: Entity, fields: tuple[str, ...], record: Mapping[str, Any], scope: RowScope) -> bool:
        if self.checks is not None and entity.name == self.checks.entity.name and scope == RowScope():
            known = self.checks.taken(fields, record)
            if known is not None:
                return known
        return super()._taken(entity, fields, record, scope)


def unique_sets(entity: Entity) -> list[tuple[str, ...]]:
    """Each unique field (as a set of one) and each unique set of ``entity`` whose values
    compare in Python as in SQL (JSON values are left to the row-by-row query)."""
    single = [(f.name,) for f in entity.stored_fields() if f.unique]
    sets = single + [tuple(s) for s in entity.unique_together if tuple(s) not in single]
    return [s for s in sets if all(entity.fields[f].type != "json" for f in s)]


def _key(record: Mapping[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The values of ``fields`` in ``record``; None when one is empty (never a repeat)."""
    key = tuple(record.get(f) for f in fields)
    return None if any(is_empty(v) for v in key) else key


def _cleaned(value: Any) -> Any:
    return to_utc(value) if isinstance(value, datetime) else value


class BatchCreate:
    """``RecordService.create_many`` (``run``) and ``create`` (``one``) for an entity that
    ``takes_batch_path``."""

    def __init__(self, service: RecordService, conn: sa.Connection, entity: Entity, actor: Actor, channel: str) -> None:
        self.service = service
        self.conn = conn
        self.entity = entity
        self.actor = actor
        self.channel = channel
        self.table = service.tables[entity.name]
        self.columns = record_columns(entity)
        accesses = service.policy.accesses(entity.name, actor, self.table, "create")
        self.hidden, self.locked = service._field_locks(entity, accesses, channel)
        # the database's error when it refused a row
        self.refusal: BaseException | None = None
        self.insert = self.table.insert().returning(*[self.table.c[c] for c in self.columns], sort_by_parameter_order=True)

    def run(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Create every row; ``RecordInvalid`` with each row's errors (``FieldError.row``)
        when any is refused, as the row-by-row save would report them."""
        errors: list[FieldError] = []
        created = 0
        iterator = iter(rows)
        start = 0
        while chunk := list(islice(iterator, CHUNK)):
            saved = self._chunk(start, chunk, errors)
            if saved is None:
                break
            created += len(saved)
            start += len(chunk)
        if errors:
            raise RecordInvalid(errors)
        return created

    def one(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Create one record and return it as stored (``RecordService.create``); refused with
        ``RecordInvalid``, caused by the database's error when the database refused it."""
        errors: list[FieldError] = []
        saved = self._chunk(0, [values], errors)
        if errors or not saved:
            raise RecordInvalid([replace(e, row=None) for e in errors]) from self.refusal
        return saved[0]

    def _chunk(self, start: int, values: list[Mapping[str, Any]], errors: list[FieldError]) -> list[dict[str, Any]] | None:
        """Save one chunk, adding its rows' errors to ``errors``; returns the records created,
        None when the database refused a row (the transaction is over)."""
        prepared: list[_Row] = []
        for offset, given in enumerate(values):
            try:
                prepared.append(self._prepare(start + offset, given))
            except RecordInvalid as invalid:
                errors += [replace(e, row=start + offset) for e in invalid.errors]
        checks = ChunkChecks(self.conn, self.service.tables, self.entity, [row.record for row in prepared])
        accepted: list[_Row] = []
        for row in prepared:
            try:
                self._validate(row, checks)
            except RecordInvalid as invalid:
                errors += [replace(e, row=row.index) for e in invalid.errors]
                continue
            number = self.entity.number
            if number and is_empty(row.record.get(number.field)):
                row.record[number.field] = next_number(self.conn, self.service._sequences, number, row.now.date())
            checks.accept(row.record)
            accepted.append(row)
        if not accepted:
            return []
        saved = self._insert(accepted, errors)
        if saved is None:
            return None
        self._check_reach(saved)
        self._journal(accepted, saved)
        return saved

    def _prepare(self, index: int, given: Mapping[str, Any]) -> _Row:
        """Input read, defaults filled, computed fields computed (as ``RecordService._create``)."""
        service, ent = self.service, self.entity
        now = to_utc(service.clock())
        intake = read_values(service.app, ent, given, self.channel, None, hidden=self.hidden, locked=self.locked)
        record = service._with_defaults(self.conn, ent, intake.values, self.actor, now)
        if ent.has_status and record.get(STATUS_FIELD) is None:
            record[STATUS_FIELD] = service._initial_status(ent)
        ctx = HookContext(self.actor, service.app, self.channel, None, service, ent.name)
        row = _Row(index, intake, record, now, ctx)
        row.intake.errors += service._compute(self.conn, ent, record, ctx, now)
        return row

    def _validate(self, row: _Row, checks: ChunkChecks) -> None:
        """Every rule (as ``RecordService._check``); raises ``RecordInvalid`` with all problems."""
        service, ent = self.service, self.entity
        later = frozenset({(ent.name, ent.number.field)} if ent.number else ())
        validation = ChunkValidation(service.app, service.tables, self.conn, service._formulas, service.hooks, row.ctx, self.actor, row.now, later, checks)
        errors = row.intake.errors + validation.errors_of(ent, row.record, RowScope(), row.intake.bad)
        if errors:
            raise RecordInvalid(list(dict.fromkeys(errors)))

    def _insert(self, rows: list[_Row], errors: list[FieldError]) -> list[dict[str, Any]] | None:
        """Insert ``rows`` with one statement and return them as stored. When the database
        refuses it (a value a concurrent write took since the check), the rows are inserted
        one at a time, to report the refused row as a single create would (then None)."""
        params = []
        for row in rows:
            values = persist.column_values(self.entity, row.record)
            user = self.actor.user_id
            values.update(created_at=row.now, updated_at=row.now, created_by=user, updated_by=user, version=1)
            params.append(values)
        try:
            with self.conn.begin_nested():
                result = self.conn.execute(self.insert, params)
                return [row_dict(stored, self.columns) for stored in result.mappings()]
        except sa.exc.IntegrityError:
            pass
        saved = []
        for row in rows:
            try:
                record_id = persist.insert_row(self.conn, self.table, self.entity, row.record, self.actor, row.now)
            except RecordInvalid as invalid:
                self.refusal = invalid.__cause__
                # the row-by-row save stops at this row: later rows' errors were never found
                errors[:] = [e for e in errors if e.row is not None and e.row < row.index]
                errors += [replace(e, row=row.index) for e in invalid.errors]
                return None
            saved.append(self.service._reread(self.conn, self.entity, record_id))
        return saved

    def _check_reach(self, saved: list[dict[str, Any]]) -> None:
        """Refuse rows outside the records the actor's roles let them create."""
        granted = self.service._matching(self.conn, self.entity, [r["id"] for r in saved], self.actor, "create")
        if not all(granted[r["id"]] for r in saved):
            name = self.entity.name
            raise PermissionDenied("create", name, f"you may not create this {name} record: it falls outside the records your roles let you create")

    def _journal(self, rows: list[_Row], saved: list[dict[str, Any]]) -> None:
        """One audit row and one ``created`` event per record, each kind in one statement."""
        audits, events = [], []
        for row, record in zip(rows, saved, strict=True):
            safe = journal.json_safe(record)
            changes = journal.creation_changes(safe)
            audits.append(journal.audit_row(entity=self.entity.name, record_id=record["id"], action="create", channel=self.channel, actor=self.actor, at=row.now, changes=changes))
            payload = {"record": safe, "changes": changes, "channel": self.channel, "user_id": self.actor.user_id}
            events.append(journal.event_row(entity=self.entity.name, record_id=record["id"], action="created", at=row.now, payload=payload, safe=True))
        journal.write_rows(self.conn, self.service._audit, audits)
        journal.write_rows(self.conn, self.service._events, events)
