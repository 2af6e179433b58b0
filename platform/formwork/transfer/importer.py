"""Import: the rows of a spreadsheet file created as records through ``RecordService``.

Every row goes through the one write path (channel ``import``): defaults, computed
fields, every validation rule, hooks, audit trail and events, exactly like a record
saved from a screen. Rows are streamed from the file in batches into
``RecordService.create_many``, all in one transaction, so memory stays flat however
long the file is.

- ``all-or-nothing`` (the default): any bad row and nothing is written; every bad row
  is reported.
- ``valid-rows``: the good rows are written, the bad ones reported (and copied to a
  rejects file by the CLI).
- ``dry_run``: everything is checked as in a real import (inside a transaction that is
  rolled back) and nothing is written.

Problems name rows as a spreadsheet shows them (the header is row 1) and the column
header as written in the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import App, Entity, Field, naming_field
from formwork.problems import did_you_mean
from formwork.records import Actor, FieldError, PluginFailure, RecordInvalid, RecordService
from formwork.transfer.headers import ERRORS_COLUMN, Column, match_headers, normalise
from formwork.transfer.tabular import FileUnreadable, TableReader, TableWriter, cell_text
from formwork.transfer.titles import TitleResolver

CHANNEL = "import"
MODES = ("all-or-nothing", "valid-rows")
ALL_OR_NOTHING, VALID_ROWS = MODES
BATCH_SIZE = 1000
# Problems kept in a report; the rest are only counted.
MAX_PROBLEMS = 1000


@dataclass(frozen=True)
class RowProblem:
    """One problem of an import: the spreadsheet ``row`` (None: the file as a whole), the
    ``column`` header as written (None: the whole row), the ``field`` it concerns."""

    row: int | None
    column: str | None
    field: str | None
    code: str
    message: str

    def format(self, display: str) -> str:
        """``legacy.xlsx:row 17: amount: must be at least 0``."""
        where = f"{display}:row {self.row}" if self.row is not None else display
        return f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "field": self.field, "code": self.code, "message": self.message}


@dataclass
class ImportReport:
    """What an import did. ``created`` rows were written (0 after a dry run or a refused
    all-or-nothing import); ``valid`` rows passed every check; ``rejected`` rows did not.
    ``problems`` holds the first ``MAX_PROBLEMS``; ``problem_count`` counts them all."""

    entity: str
    mode: str
    dry_run: bool
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    created: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    problem_count: int = 0
    # the file itself was refused (unreadable, wrong header, unknown entity): no row was imported
    file_refused: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing was wrong with the file or any row."""
        return self.problem_count == 0

    def add(self, problem: RowProblem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "valid": self.valid,
            "rejected": self.rejected,
            "created": self.created,
            "file_refused": self.file_refused,
            "error_count": self.problem_count,
            "errors": [p.as_dict() for p in self.problems],
        }


@dataclass
class _Row:
    number: int
    cells: list[Any]
    values: dict[str, Any]
    # field -> (code, message) for a link cell that names no single record
    links: dict[str, tuple[str, str]] = field(default_factory=dict)


class _Unresolved:
    """Stands in for a link title that names no single record: the record service refuses
    it as not an id, and the importer shows its own message instead."""

    def __init__(self, title: str):
        self.title = title


class _Undo(Exception):
    """Leaves the import's transaction by rolling it back (dry run, refused import)."""


class Importer:
    """Imports one file's rows into ``entity``; see the module docstring."""

    def __init__(
        self,
        records: RecordService,
        entity: str,
        actor: Actor,
        mode: str = ALL_OR_NOTHING,
        dry_run: bool = False,
        rejects: Callable[[], TableWriter] | None = None,
        progress: Callable[[int], None] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.records = records
        self.app: App = records.app
        self.entity_name = entity
        self.actor = actor
        self.mode = mode
        self.dry_run = dry_run
        self.batch_size = max(1, batch_size)
        self._open_rejects = rejects
        self._rejects: TableWriter | None = None
        self._progress = progress
        self.report = ImportReport(entity, mode, dry_run)
        self._header: list[Any] = []

    def run(self, reader: TableReader) -> ImportReport:
        """Read every row of ``reader`` and import it; returns the report (never raises for
        problems in the file or its rows)."""
        entity = self._entity()
        if entity is None:
            return self.report
        rows = reader.rows()
        try:
            columns = self._columns(entity, rows)
            if columns is None:
                return self.report
            self._import(entity, columns, rows, reader)
        except FileUnreadable as unreadable:
            self._file_problem(unreadable.row, "unreadable", unreadable.message)
        except PluginFailure as failure:
            self._file_problem(None, "plugin", f"{failure}; nothing was written")
        finally:
            if self._rejects is not None:
                self._rejects.close()
        return self.report

    # ------------------------------------------------------------------ steps

    def _entity(self) -> Entity | None:
        entity = self.app.entities.get(self.entity_name)
        if entity is None:
            hint = did_you_mean(self.entity_name, list(self.app.entities))
            self._file_problem(None, "unknown_entity", f"there is no entity '{self.entity_name}'" + (f" ({hint})" if hint else ""))
            return None
        if entity.is_child:
            self._file_problem(None, "child_entity", f"{entity.name} holds child rows of another entity; they cannot be imported on their own")
            return None
        return entity

    def _columns(self, entity: Entity, rows: Iterator[tuple[int, list[Any]]]) -> list[Column] | None:
        first = next(rows, None)
        if first is None:
            self._file_problem(None, "empty_file", "the file is empty: its first row must name the columns")
            return None
        number, header = first
        self._header = header
        columns, problems = match_headers(self.app, entity, header)
        for problem in problems:
            self.report.add(RowProblem(number, problem.column, problem.field, problem.code, problem.message))
            self.report.file_refused = True
        return None if problems else columns

    def _import(self, entity: Entity, columns: list[Column], rows: Iterator[tuple[int, list[Any]]], reader: TableReader) -> None:
        titles = TitleResolver(self.app, self.records.tables, self.records.policy, self.actor)
        self_linking = any(c.field.type == "link" and c.field.to == entity.name for c in columns)
        self.records.policy.authorize("import", entity.name, self.actor, CHANNEL, None)
        try:
            with self.records.transaction() as conn:
                for batch in self._batches(entity, columns, rows):
                    self._resolve_links(conn, entity, columns, titles, batch)
                    self._write(conn, entity, columns, batch)
                    if self_linking:
                        titles.forget_missing(entity.name)
                    if self._progress is not None:
                        self._progress(reader.position)
                if self.dry_run or (self.mode == ALL_OR_NOTHING and self.report.rejected):
                    raise _Undo
            self.report.created = self.report.valid
        except _Undo:
            self.report.created = 0

    def _batches(self, entity: Entity, columns: list[Column], rows: Iterator[tuple[int, list[Any]]]) -> Iterator[list[_Row]]:
        """Rows in batches; a row naming a record of the same entity created by an earlier
        row of the batch (a department's parent above it) starts a new batch, so the
        earlier row is stored by the time the link is looked up."""
        own_links = [c for c in columns if c.field.type == "link" and c.field.to == entity.name]
        key = naming_field(entity)
        key_column = next((c for c in columns if c.field.name == key), None)
        batch: list[_Row] = []
        titles_in_batch: set[str] = set()
        for number, cells in rows:
            row = _Row(number, cells, self._values(columns, cells))
            if own_links and key_column is not None:
                named = {_link_text(v) for c in own_links if (v := _cell(cells, c.index)) is not None}
                if named & titles_in_batch:
                    yield batch
                    batch, titles_in_batch = [], set()
                title = _cell(cells, key_column.index)
                if title is not None:
                    titles_in_batch.add(_link_text(title))
            batch.append(row)
            self.report.rows += 1
            if len(batch) >= self.batch_size:
                yield batch
                batch, titles_in_batch = [], set()
        if batch:
            yield batch

    def _values(self, columns: list[Column], cells: list[Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for column in columns:
            value = _cell(cells, column.index)
            if value is None:
                continue
            values[column.field.name] = _convert(column.field, value)
        return values

    def _resolve_links(self, conn: sa.Connection, entity: Entity, columns: list[Column], titles: TitleResolver, batch: list[_Row]) -> None:
        """Replace link titles by record ids; a title naming no record or several is noted."""
        for column in columns:
            fld = column.field
            if fld.type != "link" or not fld.to:
                continue
            target = fld.to
            wanted = [_link_text(row.values[fld.name]) for row in batch if fld.name in row.values]
            if not wanted:
                continue
            titles.prefetch(conn, target, wanted)
            for row in batch:
                if fld.name not in row.values:
                    continue
                text = _link_text(row.values[fld.name])
                ids = titles.found(target, text).ids
                if len(ids) == 1:
                    row.values[fld.name] = ids[0]
                elif len(ids) > 1:
                    row.values[fld.name] = _Unresolved(text)
                    row.links[fld.name] = ("ambiguous", f"{len(ids)} {target} records are named '{text}': give the id of the one you mean")
                elif text.isdigit():
                    row.values[fld.name] = int(text)
                else:
                    row.values[fld.name] = _Unresolved(text)
                    hint = titles.suggestion(conn, target, text)
                    key = naming_field(self.app.entity(target))
                    how = f"its {key} or id" if key else "its id"
                    row.links[fld.name] = ("link", f"no {target} named '{text}' ({hint or f'give the record by {how}'})")

    def _write(self, conn: sa.Connection, entity: Entity, columns: list[Column], batch: list[_Row]) -> None:
        """Create the batch's rows inside a savepoint; when some are refused, report them,
        roll the savepoint back and create the others again, so later rows are checked
        against every good row before them (duplicates of unique values)."""
        pending = batch
        while pending:
            try:
                with conn.begin_nested():
                    self.records.create_many(entity.name, [row.values for row in pending], self.actor, CHANNEL)
            except RecordInvalid as invalid:
                by_row: dict[int, list[FieldError]] = {}
                for error in invalid.errors:
                    by_row.setdefault(error.row if error.row is not None else -1, []).append(error)
                if -1 in by_row or not by_row:
                    raise
                for index, errors in sorted(by_row.items()):
                    self._reject(columns, pending[index], errors)
                pending = [row for index, row in enumerate(pending) if index not in by_row]
                continue
            self.report.valid += len(pending)
            return

    def _reject(self, columns: list[Column], row: _Row, errors: list[FieldError]) -> None:
        self.report.rejected += 1
        headers = {c.field.name: c.header for c in columns}
        shown: list[str] = []
        for error in errors:
            name = error.field.split(".")[0].split("[")[0]
            code, message = error.code, error.message
            if name in row.links and code == "type":
                code, message = row.links[name]
            column = headers.get(name) or (name or None)
            problem = RowProblem(row.number, column, name or None, code, message)
            self.report.add(problem)
            shown.append(f"{column}: {message}" if column else message)
        if self._open_rejects is not None:
            if self._rejects is None:
                self._rejects = self._open_rejects()
                self._rejects.write([*self._header, ERRORS_COLUMN])
            cells = list(row.cells) + [None] * (len(self._header) - len(row.cells))
            self._rejects.write([cell_text(c) for c in cells] + ["; ".join(shown)])

    def _file_problem(self, row: int | None, code: str, message: str) -> None:
        self.report.add(RowProblem(row, None, None, code, message))
        self.report.file_refused = True
        self.report.created = 0


def _cell(cells: list[Any], index: int) -> Any:
    value = cells[index] if index < len(cells) else None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _link_text(value: Any) -> str:
    """A link cell as the text to look up (``3.0`` from a spreadsheet number is ``3``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return cell_text(value).strip()


def _convert(fld: Field, value: Any) -> Any:
    """A cell in the form the record service reads: JSON text parsed for json fields,
    a choice option's label in any locale turned into its value."""
    if fld.type == "json" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if fld.type == "choice" and isinstance(value, str) and value.strip() not in fld.option_values:
        wanted = normalise(value)
        for option in fld.options:
            if any(normalise(text) == wanted for text in option.label.values()) or normalise(option.value) == wanted:
                return option.value
    return value

