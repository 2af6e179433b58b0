"""Validation of a record about to be written: every rule of every field, all at once.

Order per field: required / required_if (an empty field is checked for nothing else),
then max_length, choice options, email shape, min/max, decimal digits, the ``check``
expression, link existence, uniqueness and the field's plugin validators. Table fields
check each row the same way under ``field[index].``; entity-level unique sets come last.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import App, Entity, Field, label_text
from formwork.plugins import HookRegistry
from formwork.records import limits
from formwork.records.actor import Actor
from formwork.records.coerce import WrongType, coerce_value, is_empty
from formwork.records.errors import FieldError, RecordInvalid
from formwork.records.formulas import Formulas
from formwork.records.hooks import HookContext, call_hook
from formwork.records.rows import cached, lookup_in

EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def entity_label(entity: Entity) -> str:
    """The English label of an entity for messages, lower-case like running text."""
    return label_text(entity.label, "en", entity.name.replace("_", " ")).lower()


def unique_message(entity: Entity, fields: tuple[str, ...], record: Mapping[str, Any]) -> str:
    """What a user reads when a unique field or set repeats another record's value."""
    if len(fields) == 1:
        return f"must be unique: another {entity_label(entity)} already has '{record.get(fields[0])}'"
    names = ", ".join(label_text(entity.fields[f].label, "en", f) for f in fields)
    return f"must be unique together with {names}: another {entity_label(entity)} already has these values"


@dataclass(frozen=True)
class RowScope:
    """Where a validated record sits: its own id (None on create) and, for a child row,
    the parent whose other rows are being replaced in the same save."""

    record_id: int | None = None
    parent_id: int | None = None
    parent_field: str | None = None


@dataclass
class Validation:
    """What the rules need besides the record: the database and the caller."""

    app: App
    tables: Mapping[str, sa.Table]
    conn: sa.Connection
    formulas: Formulas
    hooks: HookRegistry | None
    ctx: HookContext
    actor: Actor
    now: datetime
    # (entity, field) pairs the save fills after validation (the document number)
    filled_later: frozenset[tuple[str, str]] = frozenset()

    def evaluate(self, entity: Entity, text: str, record: Mapping[str, Any]) -> Any:
        """The value of expression ``text`` of ``entity`` for ``record``."""
        lookup = lookup_in(self.conn, self.app, self.tables)
        return self.formulas.evaluate(entity.name, text, record, self.actor, self.now, lookup)

    def errors_of(self, entity: Entity, record: dict[str, Any], scope: RowScope, bad: set[str], prefix: str = "") -> list[FieldError]:
        """Every problem of ``record`` (fields under ``prefix``), skipping the paths in ``bad``."""
        errors: list[FieldError] = []
        for fld in entity.fields.values():
            path = f"{prefix}{fld.name}"
            if path in bad:
                continue
            if fld.type == "table":
                errors += self._table_errors(fld, record.get(fld.name) or [], scope, bad, path)
                continue
            problems = self._field_problems(entity, fld, record, scope)
            errors += [FieldError(path, code, message) for code, message in problems]
            if not problems and fld.validators and not is_empty(record.get(fld.name)):
                errors += self._validator_errors(entity, fld, record, prefix)
        if not errors:
            errors += self._unique_set_errors(entity, record, scope, prefix)
        return errors

    def _field_problems(self, entity: Entity, fld: Field, record: dict[str, Any], scope: RowScope) -> list[tuple[str, str]]:
        value = record.get(fld.name)
        if is_empty(value):
            computed = fld.compute is not None or fld.compute_hook is not None
            if fld.required and not computed and (entity.name, fld.name) not in self.filled_later:
                return [("required", "is required")]
            if fld.required_if and self.evaluate(entity, fld.required_if, record):
                return [("required", "is required here")]
            return []
        try:
            # values a before_validate hook set are not typed yet; typed ones stay as they are
            value = record[fld.name] = coerce_value(fld, value)
        except WrongType as wrong:
            return [("type", wrong.message)]
        problems = _shape_problems(fld, value)
        if problems:
            return problems
        if fld.check and self._fails(entity, fld.check, record):
            problems.append(("check", fld.message or "is not valid"))
        if fld.type == "link" and fld.to and not self._exists(fld.to, value):
            problems.append(("link", f"refers to a {entity_label(self.app.entity(fld.to))} that does not exist (id {value})"))
        if fld.unique and self._taken(entity, (fld.name,), record, scope):
            problems.append(("unique", unique_message(entity, (fld.name,), record)))
        return problems

    def _fails(self, entity: Entity, check: str, record: Mapping[str, Any]) -> bool:
        """True when ``check`` is false. Like a SQL CHECK constraint, a check that is unknown
        because a field it reads is empty passes: conditions evaluate unknown as false, so
        a failing check is confirmed by its negation being true."""
        return not self.evaluate(entity, check, record) and bool(self.evaluate(entity, f"not ({check})", record))

    def _validator_errors(self, entity: Entity, fld: Field, record: dict[str, Any], prefix: str) -> list[FieldError]:
        """Errors of the field's plugin validators; a PluginError names its field or this one."""
        ctx = replace(self.ctx, entity=entity.name, field=fld.name)
        errors: list[FieldError] = []
        for validator in fld.validators:
            try:
                call_hook(self.hooks, validator, record, ctx, fld.name)
            except RecordInvalid as refused:
                errors += [replace(e, field=f"{prefix}{e.field}") for e in refused.errors]
        return errors

    def _table_errors(self, fld: Field, rows: list[dict[str, Any]], scope: RowScope, bad: set[str], path: str) -> list[FieldError]:
        if fld.required and not rows:
            return [FieldError(path, "required", "needs at least one row")]
        child = self.app.entity(fld.entity or "")
        errors: list[FieldError] = []
        seen: set[int] = set()
        for index, row in enumerate(rows):
            row_id = row.get("id")
            if row_id is not None and scope.record_id is None:
                # a new record has no rows yet to update
                errors.append(FieldError(f"{path}[{index}].id", "row", f"is not a row of this record (id {row_id})"))
            elif row_id is not None and row_id in seen:
                errors.append(FieldError(f"{path}[{index}].id", "row", f"repeats the row of an earlier line (id {row_id})"))
            seen.add(row_id)
            row_scope = RowScope(row.get("id"), scope.record_id, fld.name)
            errors += self.errors_of(child, row, row_scope, bad, f"{path}[{index}].")
        errors += _repeats_within(child, rows, path)
        return errors

    def _exists(self, target: str, record_id: int) -> bool:
        return record_exists(self.conn, self.tables[target], self.app.entity(target), record_id)

    def _taken(self, entity: Entity, fields: tuple[str, ...], record: Mapping[str, Any], scope: RowScope) -> bool:
        """True when another stored row has the same values in ``fields``."""
        table = self.tables[entity.name]
        query = _taken_query(table, entity, fields, scope.record_id is not None, scope.parent_id is not None)
        params = {f"fw_v{n}": record.get(f) for n, f in enumerate(fields)}
        if scope.record_id is not None:
            params["fw_id"] = scope.record_id
        if scope.parent_id is not None:
            params.update(fw_parent=scope.parent_id, fw_parent_field=scope.parent_field)
        return self.conn.execute(query, params).first() is not None

    def _unique_set_errors(self, entity: Entity, record: Mapping[str, Any], scope: RowScope, prefix: str) -> list[FieldError]:
        errors = []
        for fields in entity.unique_together:
            if any(record.get(f) is None for f in fields):
                continue  # SQL unique constraints let rows with an empty member repeat
            if self._taken(entity, fields, record, scope):
                errors.append(FieldError(f"{prefix}{fields[0]}", "unique", unique_message(entity, fields, record)))
        return errors


# Statements built once per table and run with the values as parameters (see rows.cached).


def record_exists(conn: sa.Connection, table: sa.Table, entity: Entity, record_id: int) -> bool:
    """True when ``table`` (of ``entity``) has a row with ``record_id``."""
    query = cached(table, entity, "exists", lambda: sa.select(table.c.id).where(table.c.id == sa.bindparam("fw_id")))
    return conn.execute(query, {"fw_id": record_id}).first() is not None


def _taken_query(table: sa.Table, entity: Entity, fields: tuple[str, ...], other_than_own: bool, within_parent: bool) -> sa.Select[Any]:
    """SELECT of a row with the values ``fw_v0``, ``fw_v1``... in ``fields``: other than row
    ``fw_id`` when ``other_than_own``; outside the rows of table field ``fw_parent_field``
    of parent ``fw_parent`` when ``within_parent`` (those are being rewritten now; repeats
    among them are caught by ``_repeats_within`` instead)."""

    def build() -> sa.Select[Any]:
        query = sa.select(table.c.id).where(*[table.c[f] == sa.bindparam(f"fw_v{n}") for n, f in enumerate(fields)])
        if other_than_own:
            query = query.where(table.c.id != sa.bindparam("fw_id"))
        if within_parent:
            query = query.where(
                sa.or_(table.c.parent_id != sa.bindparam("fw_parent"), table.c.parent_field != sa.bindparam("fw_parent_field"), table.c.parent_id.is_(None))
            )
        return query.limit(1)

    return cached(table, entity, ("taken", fields, other_than_own, within_parent), build)


def _shape_problems(fld: Field, value: Any) -> list[tuple[str, str]]:
    """Rules that need only the value: length, options, email, range, digits. The column's
    own limits count too: a value the column cannot hold is refused here, not by the database."""
    problems: list[tuple[str, str]] = []
    if fld.type == "choice" and fld.options:
        # the column fits every option, so the options alone decide
        if value not in fld.option_values:
            problems.append(("choice", "must be one of: " + ", ".join(fld.option_values)))
    elif isinstance(value, str):
        longest = min((n for n in (fld.max_length, limits.text_length(fld)) if n is not None), default=None)
        if longest is not None and len(value) > longest:
            problems.append(("max_length", f"must be at most {longest} characters"))
    if fld.type == "email" and not EMAIL.match(value):
        problems.append(("email", "must be an email address like name@example.com"))
    if isinstance(value, int | Decimal | date) and not isinstance(value, bool):
        low, high = _bound(fld, fld.min), _bound(fld, fld.max)
        if low is not None and value < low:
            problems.append(("min", f"must be at least {_shown(low)}"))
        if high is not None and value > high:
            problems.append(("max", f"must be at most {_shown(high)}"))
    bounds = limits.field_range(fld)
    if bounds is not None and not problems and isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
        problems.append(("range", f"must be between {bounds[0]} and {bounds[1]}"))
    digits = limits.decimal_digits(fld)
    if digits is not None and isinstance(value, Decimal):
        problems += limits.digit_problems(value, *digits)
    return problems


def _bound(fld: Field, limit: Any) -> Any:
    if limit is None:
        return None
    try:
        return coerce_value(fld, limit)
    except WrongType:
        return None


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def _repeats_within(child: Entity, rows: list[dict[str, Any]], path: str) -> list[FieldError]:
    """Unique child fields repeated among the rows of one save."""
    errors: list[FieldError] = []
    for fld in child.fields.values():
        if not fld.unique:
            continue
        seen: set[Any] = set()
        for index, row in enumerate(rows):
            value = row.get(fld.name)
            if value is None:
                continue
            if value in seen:
                errors.append(FieldError(f"{path}[{index}].{fld.name}", "unique", f"repeats '{value}' of an earlier row"))
            seen.add(value)
    return errors
