"""Spreadsheet files, read and written one row at a time.

Readers turn a CSV or XLSX file into (spreadsheet row number, cells) pairs without
holding the file in memory: CSV is decoded line by line, XLSX read with openpyxl's
read-only mode. Row numbers are what a spreadsheet program shows (the first row is 1),
so messages point at the row a user sees. Writers stream rows out to CSV (UTF-8 with a
byte order mark, so Excel shows Chinese text correctly) or XLSX (openpyxl's write-only
mode).
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

from formwork.problems import did_you_mean

DEFAULT_ENCODING = "utf-8-sig"
FORMATS = ("csv", "xlsx")
# Encodings spreadsheets are commonly saved in, offered as suggestions.
COMMON_ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030", "big5", "shift_jis", "latin-1", "cp1252", "utf-16")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls format


class FileUnreadable(Exception):
    """The file cannot be read at all, or stops being readable at ``row`` (None: before any row)."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.message = message
        self.row = row


def check_encoding(name: str) -> str:
    """The canonical name of encoding ``name``; ``FileUnreadable`` for an unknown one."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        hint = did_you_mean(name, list(COMMON_ENCODINGS))
        suffix = f" ({hint})" if hint else f" (common ones: {', '.join(COMMON_ENCODINGS[:4])})"
        raise FileUnreadable(f"unknown encoding '{name}'{suffix}") from None


def detect_format(name: str, head: bytes) -> str:
    """'csv' or 'xlsx', from the first bytes of the file (else its name)."""
    if head.startswith(_ZIP_MAGIC):
        return "xlsx"
    if head.startswith(_OLE_MAGIC) or name.lower().endswith(".xls"):
        raise FileUnreadable("this is an old Excel .xls file: save it as .xlsx or CSV and import that")
    return "csv"


class TableReader(Protocol):
    """Rows of a spreadsheet: ``rows()`` yields (row number, cells) for every non-empty row,
    the header first. ``extent`` is the file's size in the unit of ``position`` (bytes or
    rows) when known, for a progress bar."""

    extent: int | None

    def rows(self) -> Iterator[tuple[int, list[Any]]]: ...

    @property
    def position(self) -> int: ...


class CsvReader:
    """A CSV file decoded line by line; an undecodable byte stops it with the row it is in."""

    def __init__(self, stream: IO[bytes], encoding: str = DEFAULT_ENCODING, extent: int | None = None):
        self.stream = stream
        canonical = check_encoding(encoding)
        # UTF-8 files from Excel start with a byte order mark, others not: read both
        self.encoding = "utf-8-sig" if canonical in ("utf-8", "utf-8-sig") else canonical
        self.extent = extent
        self._read = 0
        self._row = 1

    @property
    def position(self) -> int:
        return self._read

    def _lines(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self.encoding)()
        for raw in self.stream:
            self._read += len(raw)
            try:
                yield decoder.decode(raw)
            except UnicodeDecodeError as error:
                raise FileUnreadable(_decode_message(self.encoding, raw, error), self._row) from None
        try:
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            shown = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
            raise FileUnreadable(f"the file ends in the middle of a character ({shown}): {error.reason}", self._row) from None
        if tail:
            yield tail

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        try:
            for cells in csv.reader(self._lines(), strict=True):
                if any(cell.strip() for cell in cells):
                    yield self._row, list(cells)
                self._row += 1
        except csv.Error as error:
            raise FileUnreadable(f"not a readable CSV file: {error}", self._row) from None


def _decode_message(encoding: str, raw: bytes, error: UnicodeDecodeError) -> str:
    bad = raw[error.start : error.start + 2].hex(" ")
    utf8 = encoding == "utf-8-sig"
    shown, hint = ("utf-8", "gb18030") if utf8 else (encoding, "utf-8")
    return f"cannot be read as {shown} (bytes {bad}); save the file as UTF-8 or give its encoding, e.g. --encoding {hint}"


class XlsxReader:
    """The first worksheet (or ``sheet``) of an XLSX workbook, read in openpyxl's read-only mode."""

    def __init__(self, stream: IO[bytes], sheet: str | None = None):
        import openpyxl

        try:
            self.book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
            raise FileUnreadable(f"not a readable XLSX workbook: {error}") from None
        if sheet is not None and sheet not in self.book.sheetnames:
            hint = did_you_mean(sheet, self.book.sheetnames)
            raise FileUnreadable(f"the workbook has no sheet '{sheet}'" + (f" ({hint})" if hint else f" (sheets: {', '.join(self.book.sheetnames)})"))
        self.sheet = self.book[sheet] if sheet is not None else self.book.worksheets[0]
        self.extent = self.sheet.max_row
        self._row = 0

    @property
    def position(self) -> int:
        return self._row

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, values in enumerate(self.sheet.iter_rows(values_only=True), start=1):
                self._row = number
                cells = [_trim(v) for v in values]
                if any(v is not None and v != "" for v in cells):
                    yield number, cells
        finally:
            self.book.close()


def _trim(value: Any) -> Any:
    # Excel keeps trailing spaces typed into a cell; a blank cell means "no value"
    if isinstance(value, str) and not value.strip():
        return None
    return value


def open_reader(stream: IO[bytes], name: str, encoding: str | None = None, sheet: str | None = None, size: int | None = None) -> TableReader:
    """A reader for ``stream`` (a binary file positioned at its start): XLSX when the bytes
    say so, else CSV in ``encoding`` (default UTF-8, with or without a byte order mark)."""
    if encoding is not None:
        check_encoding(encoding)
    head = stream.read(8)
    stream.seek(0)
    if detect_format(name, head) == "xlsx":
        return XlsxReader(stream, sheet)
    return CsvReader(stream, encoding or DEFAULT_ENCODING, size)


class TableWriter(Protocol):
    """Rows out to a spreadsheet file; ``close()`` finishes the file."""

    def write(self, cells: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


class CsvWriter:
    """CSV in UTF-8 with a byte order mark (Excel then reads Chinese text correctly)."""

    def __init__(self, stream: IO[bytes], owns_stream: bool = False):
        self.stream = stream
        self.owns_stream = owns_stream
        self.text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", write_through=True)
        self.writer = csv.writer(self.text)

    def write(self, cells: Sequence[Any]) -> None:
        self.writer.writerow([cell_text(c) for c in cells])

    def close(self) -> None:
        """Finish the file; the stream is closed too when the writer owns it, else flushed."""
        self.text.flush()
        self.text.detach()
        if self.owns_stream:
            self.stream.close()
        else:
            self.stream.flush()


class XlsxWriter:
    """One worksheet written in openpyxl's write-only mode (rows go to disk as they come)."""

    def __init__(self, stream: IO[bytes], title: str = "Sheet1"):
        import openpyxl

        self.stream = stream
        self.book = openpyxl.Workbook(write_only=True)
        self.sheet = self.book.create_sheet(title=_sheet_title(title))

    def write(self, cells: Sequence[Any]) -> None:
        self.sheet.append([_xlsx_cell(c) for c in cells])

    def close(self) -> None:
        self.book.save(self.stream)


def open_writer(stream: IO[bytes], file_format: str, title: str = "Sheet1") -> TableWriter:
    """A writer of ``file_format`` ('csv' or 'xlsx') onto the binary ``stream``."""
    if file_format == "xlsx":
        return XlsxWriter(stream, title)
    return CsvWriter(stream)


def cell_text(value: Any) -> str:
    """A value as CSV text: dates in ISO form, booleans as true/false, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _xlsx_cell(value: Any) -> Any:
    # Excel has no time zones: times are written as UTC wall-clock times
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, bool | int | float | Decimal | date | str) or value is None:
        return value
    return cell_text(value)


def _sheet_title(title: str) -> str:
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return cleaned[:31] or "Sheet1"


def file_size(path: Path) -> int | None:
    """The size of ``path`` in bytes, None when it cannot be told."""
    try:
        return path.stat().st_size
    except OSError:
        return None
