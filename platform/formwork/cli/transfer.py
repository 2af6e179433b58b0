"""``formwork import`` and ``formwork export``: records in and out as CSV or XLSX files."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from formwork.cli.context import project_option, resolve_project
from formwork.cli.database import compiled, open_engine
from formwork.records import Actor, PermissionDenied
from formwork.transfer import (
    FORMATS,
    HEADER_STYLES,
    MODES,
    ExportRefused,
    FileUnreadable,
    Importer,
    ImportReport,
    export_records,
    open_reader,
    open_writer,
)
from formwork.transfer.tabular import CsvWriter, XlsxReader, file_size

if TYPE_CHECKING:
    from formwork.web.runtime import Runtime

# Problems printed by the CLI; the rest are counted.
SHOWN_PROBLEMS = 200
# Files at least this long get a progress bar (bytes of CSV, rows of XLSX).
PROGRESS_FROM = {"bytes": 1_000_000, "rows": 10_000}


def _runtime(project_dir: Path | None) -> Runtime:
    """The deployment's runtime; exits when its database is not migrated for this metadata."""
    from formwork.web.app import build_runtime

    project = resolve_project(project_dir)
    app = compiled(project)
    engine = open_engine(project)
    runtime = build_runtime(project, app, engine)
    if runtime.schema_warning:
        _stop(runtime.schema_warning)
    return runtime


def _actor(runtime: Runtime, username: str | None) -> Actor:
    """Who the command works as: the system (every record, every field), or with ``--user``
    that user, under their roles as on the screens and in the API; exits when the user is
    unknown or deactivated."""
    if username is None:
        return Actor.system()
    from formwork.security import AccountError, load_actor
    from formwork.security.accounts import Accounts

    try:
        user_id = Accounts(runtime.records).require_user(username)
    except AccountError as error:
        _stop(str(error))
    with runtime.engine.connect() as conn:
        actor = load_actor(conn, runtime.app_model, runtime.schema, user_id)
    if actor is None:
        _stop(f"user '{username}' is deactivated")
    return actor


USER_OPTION = click.option("--user", "username", default=None, metavar="USERNAME",
                           help="Work as this user, under their roles (default: the system, which may do everything).")


def _stop(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@click.command("import")
@click.argument("entity")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row as a real import would, and write nothing.")
@click.option("--mode", type=click.Choice(MODES), default=MODES[0], show_default=True,
              help="all-or-nothing: any bad row and nothing is written. valid-rows: write the good rows, copy the bad ones to --rejects.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where valid-rows mode writes the refused rows with their errors (default: FILE's name with .rejects.csv, e.g. legacy.rejects.csv).")
@click.option("--encoding", default=None, help="Encoding of a CSV file (default utf-8; Chinese Excel often saves gbk or gb18030).")
@click.option("--sheet", default=None, help="Worksheet of an XLSX file to read (default: the first).")
@USER_OPTION
@project_option
def import_command(entity: str, file: Path, dry_run: bool, mode: str, rejects: Path | None, encoding: str | None, sheet: str | None,
                   username: str | None, project_dir: Path | None) -> None:
    """Create ENTITY records from the rows of FILE (CSV or XLSX; the first row names the columns).

    Headers are field names or labels in any language. Link columns hold the linked
    record's title (a user's username, a department's name) or its id. Every row is
    checked like a save from a screen; problems name the spreadsheet row and column.
    Exits 1 when any row or the file was refused."""
    runtime = _runtime(project_dir)
    actor = _actor(runtime, username)
    display = str(file)
    rejects_path = rejects or file.with_name(f"{file.stem}.rejects.csv")
    use_rejects = mode == "valid-rows" and not dry_run
    with open(file, "rb") as stream:
        try:
            reader = open_reader(stream, file.name, encoding, sheet, file_size(file))
        except FileUnreadable as unreadable:
            _stop(f"{display}: {unreadable.message}")
            return
        opened: list[Path] = []

        def open_rejects() -> CsvWriter:
            opened.append(rejects_path)
            return CsvWriter(open(rejects_path, "wb"), owns_stream=True)  # noqa: SIM115 - the writer closes it

        with _progress(reader.extent, "rows" if isinstance(reader, XlsxReader) else "bytes") as progress:
            importer = Importer(
                runtime.records,
                entity,
                actor,
                mode=mode,
                dry_run=dry_run,
                rejects=open_rejects if use_rejects else None,
                progress=progress,
            )
            try:
                report = importer.run(reader)
            except PermissionDenied as denied:
                _stop(str(denied))
                return
    if report.file_refused:
        # the import stopped part-way (e.g. undecodable bytes) and wrote nothing: no rejects either
        for path in opened:
            path.unlink(missing_ok=True)
    _print_report(report, display, rejects_path if opened and not report.file_refused else None)
    if not report.ok:
        sys.exit(1)


@contextlib.contextmanager
def _progress(extent: int | None, unit: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for long files (click draws it only on a terminal)."""
    if extent is None or extent < PROGRESS_FROM[unit]:
        yield None
        return
    with click.progressbar(length=extent, label="Importing", file=sys.stderr) as bar:
        done = 0

        def advance(position: int) -> None:
            nonlocal done
            bar.update(max(0, position - done))
            done = max(done, position)

        yield advance


def _print_report(report: ImportReport, display: str, rejects: Path | None) -> None:
    for problem in report.problems[:SHOWN_PROBLEMS]:
        click.echo(problem.format(display))
    hidden = report.problem_count - min(len(report.problems), SHOWN_PROBLEMS)
    if hidden > 0:
        click.echo(f"... and {hidden} more problem(s)")
    if report.dry_run:
        verdict = "dry run, nothing was written"
        if report.rejected:
            verdict += f"; {report.rejected} row(s) would be refused"
    elif report.created:
        verdict = f"{report.created} {report.entity} record(s) created"
        if report.rejected:
            verdict += f"; {report.rejected} row(s) refused" + (f", written to {rejects}" if rejects else "")
    elif report.problem_count:
        verdict = "nothing was written"
        if report.rejected:
            verdict += f"; {report.rejected} row(s) refused"
    else:
        verdict = "no rows to import"
    click.echo(f"{display}: {report.rows} row(s) read, {report.valid} valid: {verdict}.", err=True)


@click.command("export")
@click.argument("entity")
@click.option("--format", "file_format", type=click.Choice(FORMATS), default=None,
              help="File format (default: from --output's extension, else csv).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="File to write ('-' for standard output; default: ENTITY.csv or ENTITY.xlsx).")
@click.option("--headers", type=click.Choice(HEADER_STYLES), default="labels", show_default=True,
              help="Header row: field labels in the default locale, or field names.")
@click.option("--filter", "where", default=None, help="Only records matching this expression, e.g. \"amount > 100\".")
@USER_OPTION
@project_option
def export_command(entity: str, file_format: str | None, output: Path | None, headers: str, where: str | None, username: str | None,
                   project_dir: Path | None) -> None:
    """Write ENTITY's records to a CSV (UTF-8, opens in Excel) or XLSX file.

    Links are written as the linked record's title, so the file imports again."""
    runtime = _runtime(project_dir)
    actor = _actor(runtime, username)
    if file_format is None:
        suffix = output.suffix.lower().lstrip(".") if output is not None and str(output) != "-" else ""
        file_format = suffix if suffix in FORMATS else "csv"
    target = output or Path(f"{entity}.{file_format}")
    try:
        if str(target) == "-":
            with click.open_file("-", "wb") as stdout:
                count = _export_to(stdout, runtime, actor, entity, file_format, headers, where)
        else:
            count = _export_file(target, runtime, actor, entity, file_format, headers, where)
    except ExportRefused as refused:
        _stop(refused.message)
        return
    except PermissionDenied as denied:
        _stop(str(denied))
        return
    shown = "standard output" if str(target) == "-" else str(target)
    click.echo(f"{count} {entity} record(s) written to {shown}.", err=True)


def _export_to(stream: IO[bytes], runtime: Runtime, actor: Actor, entity: str, file_format: str, headers: str, where: str | None) -> int:
    writer = open_writer(stream, file_format, entity)
    count = export_records(runtime.records, entity, actor, writer, headers=headers, where=where)
    writer.close()
    return count


def _export_file(target: Path, runtime: Runtime, actor: Actor, entity: str, file_format: str, headers: str, where: str | None) -> int:
    """Export into a file beside ``target`` and move it into place, so a failed export
    never leaves a half-written file (or destroys an earlier one)."""
    draft = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with open(draft, "wb") as stream:
            count = _export_to(stream, runtime, actor, entity, file_format, headers, where)
        os.replace(draft, target)
    finally:
        draft.unlink(missing_ok=True)
    return count

