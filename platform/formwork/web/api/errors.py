"""The API's error shape: ``{"errors": [{"field", "code", "message"}]}`` with a status code.

Views raise ``ApiError`` (or let the record service's exceptions through); the handlers
registered on the blueprint turn each into JSON, so no error of the API is ever an HTML
page, a SQL message or a traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from formwork.records import (
    FieldError,
    PermissionDenied,
    PluginFailure,
    RecordInvalid,
    RecordNotFound,
    StaleVersion,
)
from formwork.web.api.payload import json_response

log = logging.getLogger(__name__)

# Status of a refused write: the request was well-formed JSON but its values break rules.
INVALID_STATUS = 422


class ApiError(Exception):
    """A refused request: ``status`` and the errors to list; ``extra`` goes into the body."""

    def __init__(self, status: int, errors: Iterable[FieldError], **extra: Any):
        self.status = status
        self.errors = list(errors)
        self.extra = extra
        super().__init__("; ".join(e.message for e in self.errors))


def refuse(status: int, field: str, code: str, message: str) -> ApiError:
    """An ``ApiError`` with a single error."""
    return ApiError(status, [FieldError(field, code, message)])


def json_object(allowed: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object with no keys but ``allowed``: 400 when the body is not a
    JSON object, 422 ``unknown_field`` naming the first other key (a typo is never ignored)."""
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        raise refuse(400, "", "body", "send a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise refuse(422, unknown[0], "unknown_field", f"is not accepted here; send only: {', '.join(allowed)}")
    return body


def error_body(errors: Iterable[FieldError], **extra: Any) -> dict[str, Any]:
    """The JSON body of an error response (``row`` only where a batch sets it)."""
    listed = []
    for error in errors:
        item: dict[str, Any] = {"field": error.field, "code": error.code, "message": error.message}
        if error.row is not None:
            item["row"] = error.row
        listed.append(item)
    return {"errors": listed, **extra}


def _respond(status: int, errors: Iterable[FieldError], **extra: Any) -> flask.Response:
    return json_response(error_body(errors, **extra), status)


def _internal(error_id: str) -> flask.Response:
    message = f"the request failed because of an error on the server (error id {error_id})"
    return _respond(500, [FieldError("", "internal", message)])


def register_error_handlers(blueprint: flask.Blueprint) -> None:
    """JSON responses for every failure of a request to ``blueprint``."""

    @blueprint.errorhandler(ApiError)
    def api_error(error: ApiError) -> flask.Response:
        response = _respond(error.status, error.errors, **error.extra)
        if error.status == 401:
            # RFC 6750: a refused request names the scheme it expects
            response.headers["WWW-Authenticate"] = 'Bearer realm="formwork"'
        return response

    @blueprint.errorhandler(RecordInvalid)
    def invalid(error: RecordInvalid) -> flask.Response:
        return _respond(INVALID_STATUS, error.errors)

    @blueprint.errorhandler(StaleVersion)
    def stale(error: StaleVersion) -> flask.Response:
        return _respond(409, [FieldError("version", "stale", str(error))], current_version=error.current)

    @blueprint.errorhandler(RecordNotFound)
    def not_found(error: RecordNotFound) -> flask.Response:
        return _respond(404, [FieldError("", "not_found", str(error))])

    @blueprint.errorhandler(PermissionDenied)
    def denied(error: PermissionDenied) -> flask.Response:
        return _respond(403, [FieldError("", "forbidden", str(error))])

    @blueprint.errorhandler(PluginFailure)
    def plugin_failed(error: PluginFailure) -> flask.Response:
        # the record service logged the traceback under this id
        return _respond(500, [FieldError("", "internal", str(error))])

    @blueprint.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> flask.Response:
        code = (error.name or "error").lower().replace(" ", "_")
        response = _respond(error.code or 500, [FieldError("", code, error.description or error.name)])
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @blueprint.errorhandler(Exception)
    def crashed(error: Exception) -> flask.Response:
        error_id = uuid.uuid4().hex[:12]
        log.error("API request %s %s failed (error id %s)", flask.request.method, flask.request.path, error_id, exc_info=error)
        return _internal(error_id)
