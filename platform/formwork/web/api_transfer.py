"""Bulk import and export over HTTP: ``POST /api/v1/<entity>/import`` and
``GET /api/v1/<entity>/export``.

The same importer and exporter as ``formwork import`` / ``formwork export``
(docs/import-export.md), with the same messages, as JSON:
``{"errors": [{"row", "column", "field", "code", "message"}], ...}``.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

import flask

from formwork.records import Actor, PermissionDenied
from formwork.transfer import (
    FORMATS,
    HEADER_STYLES,
    MODES,
    ExportRefused,
    FileUnreadable,
    Importer,
    export_rows,
    open_reader,
    open_writer,
)
from formwork.web.api import request_actor
from formwork.web.api.errors import ApiError
from formwork.web.runtime import Runtime

# Uploads larger than this are kept in a temporary file rather than in memory.
SPOOL_BYTES = 8 * 1024 * 1024
# Bytes gathered before a chunk of a CSV export is sent.
CHUNK_BYTES = 64 * 1024
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
TRUE_WORDS = ("1", "true", "yes", "on")


def transfer_blueprint(actor: Callable[[], Actor] = request_actor) -> flask.Blueprint:
    """The import and export endpoints. ``actor`` tells who makes the request (default: the
    REST API's ``request_actor``); the record service's policy decides what that actor may
    import (``import`` and ``create``) and export (``read`` and ``export``, its rows and
    fields)."""
    current_actor = actor
    blueprint = flask.Blueprint("formwork_transfer", __name__, url_prefix="/api/v1")

    @blueprint.errorhandler(ApiError)
    def refused(error: ApiError) -> tuple[flask.Response, int]:
        # the actor function refuses a request without credentials (401)
        first = error.errors[0]
        response, status = _errors(error.status, first.field or None, first.code, first.message)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="formwork"'
        return response, status

    @blueprint.post("/<entity>/import")
    def import_records(entity: str) -> tuple[flask.Response, int]:
        runtime = _runtime()
        caller = current_actor()
        if entity not in runtime.app_model.entities:
            return _errors(404, None, "unknown_entity", f"there is no entity '{entity}'")
        mode = _param("mode") or MODES[0]
        if mode not in MODES:
            return _errors(400, "mode", "choice", f"must be one of: {', '.join(MODES)}")
        dry_run = (_param("dry_run") or "").strip().lower() in TRUE_WORDS
        upload, name = _upload()
        if upload is None:
            return _errors(400, "file", "required", "send the file as the multipart field 'file' or as the request body")
        with upload:
            try:
                reader = open_reader(upload, name, _param("encoding"), _param("sheet"))
            except FileUnreadable as unreadable:
                return _errors(400, "file", "unreadable", unreadable.message)
            importer = Importer(runtime.records, entity, caller, mode=mode, dry_run=dry_run)
            try:
                report = importer.run(reader)
            except PermissionDenied as denied:
                return _errors(403, None, "permission", str(denied))
        if report.file_refused:
            status = 400
        elif report.rejected and not report.created and not dry_run:
            status = 422
        else:
            status = 200
        return flask.jsonify(report.as_dict()), status

    @blueprint.get("/<entity>/export")
    def export(entity: str) -> flask.Response | tuple[flask.Response, int]:
        runtime = _runtime()
        caller = current_actor()
        file_format = flask.request.args.get("format", "csv")
        if file_format not in FORMATS:
            return _errors(400, "format", "choice", f"must be one of: {', '.join(FORMATS)}")
        headers = flask.request.args.get("headers", "labels")
        if headers not in HEADER_STYLES:
            return _errors(400, "headers", "choice", f"must be one of: {', '.join(HEADER_STYLES)}")
        try:
            rows = export_rows(runtime.records, entity, caller, headers, flask.request.args.get("filter") or None)
        except ExportRefused as refused:
            status = 404 if refused.field is None and entity not in runtime.app_model.entities else 400
            return _errors(status, refused.field, "export", refused.message)
        except PermissionDenied as denied:
            return _errors(403, None, "permission", str(denied))
        body = _csv_chunks(rows) if file_format == "csv" else _xlsx_chunks(rows, entity)
        response = flask.Response(flask.stream_with_context(body), mimetype=MEDIA_TYPES[file_format])
        response.headers["Content-Disposition"] = f'attachment; filename="{entity}.{file_format}"'
        return response

    return blueprint


def _runtime() -> Runtime:
    return flask.current_app.extensions["formwork"]


def _param(name: str) -> str | None:
    """A parameter from the query string or the multipart form."""
    value = flask.request.args.get(name)
    # only a multipart request has form fields; reading another body as a form would consume the upload
    if value is None and flask.request.mimetype == "multipart/form-data":
        value = flask.request.form.get(name)
    return value


def _upload() -> tuple[IO[bytes] | None, str]:
    """The uploaded file (seekable) and its name: the multipart field ``file``, else the raw body."""
    if flask.request.mimetype == "multipart/form-data":
        stored = flask.request.files.get("file")
        if stored is None:
            return None, ""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        stored.save(spool)
        spool.seek(0)
        return spool, stored.filename or "upload"
    # request.files or request.form would parse (and consume) a form-encoded body
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    size = 0
    while chunk := flask.request.stream.read(CHUNK_BYTES):
        spool.write(chunk)
        size += len(chunk)
    if size == 0:
        spool.close()
        return None, ""
    spool.seek(0)
    return spool, flask.request.args.get("filename", "upload")


def _errors(status: int, field: str | None, code: str, message: str) -> tuple[flask.Response, int]:
    return flask.jsonify(errors=[{"row": None, "column": None, "field": field, "code": code, "message": message}]), status


class _Chunks(io.RawIOBase):
    """A write-only stream whose bytes are taken out in chunks."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _csv_chunks(rows: Iterator[list[Any]]) -> Iterator[bytes]:
    """The CSV file in chunks of about ``CHUNK_BYTES``, produced as rows are read."""
    sink = _Chunks()
    writer = open_writer(sink, "csv")
    for cells in rows:
        writer.write(cells)
        if len(sink.buffer) >= CHUNK_BYTES:
            yield sink.take()
    writer.close()
    yield sink.take()


def _xlsx_chunks(rows: Iterator[list[Any]], title: str) -> Iterator[bytes]:
    """The XLSX file: written to a temporary file (a zip is finished only at its end), then sent in chunks."""
    with tempfile.TemporaryFile() as spool:
        writer = open_writer(spool, "xlsx", title)
        for cells in rows:
            writer.write(cells)
        writer.close()
        spool.seek(0)
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk
