"""The REST API's routes under ``/api/v1``: records of every entity, custom actions, OpenAPI.

Every write goes through the record service with the request's actor and channel
``api``; every list through ``RecordService.list`` (one query path with the screens, the
permission policy's row filter applied there). docs/api.md describes the API for
integrators.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from formwork.metadata.model import App, Entity, label_text
from formwork.problems import did_you_mean
from formwork.records import (
    FieldError,
    HookContext,
    PermissionDenied,
    RecordInvalid,
    RecordNotFound,
    RecordQuery,
    StaleVersion,
)
from formwork.records.hooks import call_hook
from formwork.records.intake import read_values
from formwork.records.listing import INTEGER_MAX, keyset_of
from formwork.records.rows import read_children
from formwork.web.api.cursor import Cursors
from formwork.web.api.errors import INVALID_STATUS, ApiError, error_body, refuse, register_error_handlers
from formwork.web.api.expand import check_paths, expand, tables_needed
from formwork.web.api.identity import API_CHANNEL, request_actor
from formwork.web.api.openapi import openapi_document
from formwork.web.api.params import ListRequest, read_fields, read_list_request, split_list
from formwork.web.api.payload import BodyRefused, json_response, read_json_object, to_json
from formwork.web.api.schemas import EntitySchema, ValueProblems, build_schemas
from formwork.web.runtime import Runtime

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
BLUEPRINT_NAME = "api_v1"
# Largest request body the API reads (bytes); the config key FORMWORK_API_MAX_BODY overrides it.
DEFAULT_MAX_BODY = 1024 * 1024
MAX_BODY_KEY = "FORMWORK_API_MAX_BODY"
RECORD_ID = "<record_id>"
ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,10})"?\s*$')


@dataclass(frozen=True)
class Api:
    """What the views share, built once when the API is registered."""

    runtime: Runtime
    schemas: dict[str, EntitySchema]
    cursors: Cursors
    document: dict[str, Any]

    @property
    def app(self) -> App:
        return self.runtime.app_model

    def entity(self, name: str) -> Entity:
        """The entity served at ``/api/v1/<name>``; 404 for an unknown name or a child entity
        (child rows are read and written inside their parent record)."""
        entity = self.app.entities.get(name)
        if entity is None or entity.is_child:
            served = [e.name for e in self.app.entities.values() if not e.is_child]
            hint = did_you_mean(name, served)
            raise refuse(404, "", "not_found", f"there is no entity '{name}' in this API" + (f" ({hint})" if hint else ""))
        return entity

    def dump(self, entity: Entity, record: Mapping[str, Any]) -> dict[str, Any]:
        return self.schemas[entity.name].dump(record)

    def fetch(self, entity: str, ids: list[int]) -> list[dict[str, Any]]:
        """Dumped records of ``ids`` the request's actor may read (for expanding links); none
        when the actor may not read ``entity`` at all, so those links stay ``{"id": n}``."""
        try:
            found = self.runtime.records.list(entity, request_actor(), RecordQuery(filters={"id": ids}, limit=len(ids)))
        except PermissionDenied:
            return []
        target = self.app.entity(entity)
        return [self.dump(target, r) for r in found]


def _record_id(entity: Entity, text: str) -> int:
    """The id in a URL; 404 for text that cannot be the id of a record."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= INTEGER_MAX:
        raise refuse(404, "", "not_found", f"{entity.name} {text} does not exist")
    return int(text)


def _etag(record: Mapping[str, Any]) -> dict[str, str]:
    return {"ETag": f'"{record["version"]}"'}


def _version(body: dict[str, Any], required: bool) -> int | None:
    """The version the client read: ``version`` in the body (removed from it) or If-Match."""
    sent = body.pop("version", None)
    header = flask.request.headers.get("If-Match")
    from_header = None
    if header is not None:
        match = ETAG.match(header)
        if match is None:
            raise refuse(400, "version", "version", 'If-Match must hold the record\'s version, as its ETag: "3"')
        from_header = int(match.group(1))
    if sent is not None and (isinstance(sent, bool) or not isinstance(sent, int) or not 1 <= sent <= INTEGER_MAX):
        raise refuse(400, "version", "type", "must be the record's version, a whole number")
    if sent is not None and from_header is not None and sent != from_header:
        raise refuse(400, "version", "version", "the body and If-Match name different versions")
    version = sent if sent is not None else from_header
    if version is None and required:
        message = "is required: send the version you loaded (in the body or as If-Match), so nobody's changes are overwritten"
        raise ApiError(428, [FieldError("version", "version_required", message)])
    return version


def _body(optional: bool = False) -> dict[str, Any]:
    try:
        return read_json_object(flask.request, optional=optional)
    except BodyRefused as refused:
        raise ApiError(refused.status, [refused.error]) from None


def _values(api: Api, entity: Entity, body: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The body's values in their Python types; 422 with every type problem, together with
    the problems of keys that are not writable fields (the record service's judgement)."""
    schema = api.schemas[entity.name]
    problems = _row_ids_on_create(entity, body) if creating else []
    try:
        values = schema.load(body)
    except ValueProblems as wrong:
        problems = [*wrong.errors, *problems]
    if problems:
        keys = read_values(api.app, entity, schema.unread_keys(body), API_CHANNEL, None).errors
        raise ApiError(INVALID_STATUS, [*problems, *keys])
    return values


def _row_ids_on_create(entity: Entity, body: dict[str, Any]) -> list[FieldError]:
    """A new record has no rows to keep: an ``id`` in one of its rows is refused."""
    found = []
    for fld in entity.fields.values():
        rows = body.get(fld.name) if fld.type == "table" else None
        for index, row in enumerate(rows if isinstance(rows, list) else []):
            if isinstance(row, dict) and "id" in row:
                found.append(FieldError(f"{fld.name}[{index}].id", "system_field", "is set by the system: a new record has no rows to keep"))
    return found


def _shape(api: Api, entity: Entity, records: list[dict[str, Any]], fields: tuple[str, ...] | None, paths: tuple[str, ...]) -> list[dict[str, Any]]:
    """Dumped records with links expanded along ``paths`` and only ``fields`` (plus id,
    version and the expanded links) kept."""
    dumped = [api.dump(entity, r) for r in records]
    if paths:
        expand(api.app, entity, dumped, paths, api.fetch)
    if fields is None:
        return dumped
    keep = {"id", "version", *fields, *tables_needed(paths)}
    return [{k: v for k, v in record.items() if k in keep} for record in dumped]


def _read_options(entity: Entity, api: Api) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    args = flask.request.args
    errors: list[FieldError] = []
    fields = read_fields(entity, args.get("fields"), errors)
    paths = split_list(args.get("expand", ""))
    errors += check_paths(api.app, entity, paths)
    unknown = [k for k in args if k not in ("fields", "expand")]
    errors += [FieldError(k, "unknown_parameter", "is not a parameter of this request (fields, expand)") for k in unknown]
    if errors:
        raise ApiError(400, errors)
    return fields, paths


def _with_rows(api: Api, entity: Entity, page: list[dict[str, Any]], names: set[str]) -> list[dict[str, Any]]:
    """``page`` with the child rows of the table fields among ``names`` (lists carry none
    unless asked), except table fields the permission policy hides from the actor."""
    tables = {n for n in names if n in entity.fields and not entity.fields[n].is_stored}
    tables -= api.runtime.records.policy.hidden_fields(entity.name, request_actor())
    if not tables or not page:
        return page
    with api.runtime.engine.connect() as conn:
        children = read_children(conn, api.app, api.runtime.schema.tables, entity, [r["id"] for r in page])
    return [{**r, **{k: v for k, v in children[r["id"]].items() if k in tables}} for r in page]


def _list(api: Api, entity: Entity) -> flask.Response:
    request: ListRequest = read_list_request(entity, flask.request.args, api.cursors)
    errors = request.errors + check_paths(api.app, entity, request.expand)
    if errors:
        raise ApiError(400, errors)
    service, actor, query = api.runtime.records, request_actor(), request.query
    try:
        found = service.list(entity.name, actor, query)
        total = service.count(entity.name, actor, query) if request.count else None
    except RecordInvalid as invalid:
        # a bad filter, sort or cursor is a bad request, not a refused write
        raise ApiError(400, invalid.errors) from None
    asked = (query.limit or 1) - 1
    page = _with_rows(api, entity, found[:asked], {*(request.fields or ()), *tables_needed(request.expand)})
    body: dict[str, Any] = {"items": _shape(api, entity, page, request.fields, request.expand)}
    body["next_cursor"] = api.cursors.make(query.sort, keyset_of(page[-1], query.sort)) if len(found) > asked and page else None
    if total is not None:
        body["count"] = total
    return json_response(body)


def _create(api: Api, entity: Entity) -> flask.Response:
    body = _body()
    values = _values(api, entity, body, creating=True)
    record = api.runtime.records.create(entity.name, values, request_actor(), API_CHANNEL)
    headers = {**_etag(record), "Location": f"{API_PREFIX}/{entity.name}/{record['id']}"}
    return json_response(api.dump(entity, record), 201, headers)


def _update(api: Api, entity: Entity, record_id: int) -> flask.Response:
    body = _body()
    version = _version(body, required=True)
    values = _values(api, entity, body, creating=False)
    record = api.runtime.records.update(entity.name, record_id, values, request_actor(), API_CHANNEL, version)
    return json_response(api.dump(entity, record), 200, _etag(record))


def _delete(api: Api, entity: Entity, record_id: int) -> flask.Response:
    body: dict[str, Any] = {}
    raw = flask.request.args.get("version")
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= INTEGER_MAX:
            raise refuse(400, "version", "type", "must be the record's version, a whole number")
        body["version"] = int(raw)
    version = _version(body, required=False)
    api.runtime.records.delete(entity.name, record_id, request_actor(), API_CHANNEL, version=version)
    return flask.Response(status=204)


def _json_result(value: Any, hook: str) -> Any:
    """A hook's return value if it can be shown as JSON, else None (logged)."""
    try:
        to_json(value)
    except (TypeError, ValueError):
        log.warning("action hook %s returned %r, which is not JSON data; the response shows null", hook, type(value))
        return None
    return value


def _action(api: Api, entity: Entity, record_id: int, name: str) -> flask.Response:
    action = entity.actions.get(name)
    if action is None:
        hint = did_you_mean(name, list(entity.actions))
        raise refuse(404, "", "not_found", f"{entity.name} has no action '{name}'" + (f" ({hint})" if hint else ""))
    body = _body(optional=True)
    version = _version(body, required=False)
    if body:
        raise ApiError(400, [FieldError(k, "unknown_field", "actions take no parameters besides version") for k in body])
    service, actor = api.runtime.records, request_actor()
    with service.transaction():
        record = service.get(entity.name, record_id, actor)
        if version is not None and version != record["version"]:
            raise StaleVersion(entity.name, record_id, record["version"])
        service.policy.authorize(action.name, entity.name, actor, API_CHANNEL, record)
        context = HookContext(actor, api.app, API_CHANNEL, record, service, entity.name)
        result = call_hook(api.runtime.hooks, action.hook, dict(record), context)
        try:
            after: dict[str, Any] | None = service.get(entity.name, record_id, actor)
        except RecordNotFound:
            after = None  # the action deleted the record
    shown = api.dump(entity, after) if after is not None else None
    return json_response({"action": name, "result": _json_result(result, action.hook), "record": shown})


def _index(api: Api) -> flask.Response:
    locale = api.app.default_locale
    entities = [
        {"name": e.name, "label": label_text(e.label, locale, e.name), "url": f"{API_PREFIX}/{e.name}"}
        for e in api.app.entities.values()
        if not e.is_child
    ]
    return json_response({"app": api.app.name, "openapi": f"{API_PREFIX}/openapi.json", "entities": entities})


def _routes(blueprint: flask.Blueprint, api: Api) -> None:
    @blueprint.get("")
    def index() -> flask.Response:
        return _index(api)

    @blueprint.get("/openapi.json")
    def openapi() -> flask.Response:
        return json_response(api.document)

    @blueprint.get("/<entity_name>")
    def list_records(entity_name: str) -> flask.Response:
        return _list(api, api.entity(entity_name))

    @blueprint.post("/<entity_name>")
    def create_record(entity_name: str) -> flask.Response:
        return _create(api, api.entity(entity_name))

    @blueprint.get(f"/<entity_name>/{RECORD_ID}")
    def get_record(entity_name: str, record_id: str) -> flask.Response:
        entity = api.entity(entity_name)
        fields, paths = _read_options(entity, api)
        record = api.runtime.records.get(entity.name, _record_id(entity, record_id), request_actor())
        return json_response(_shape(api, entity, [record], fields, paths)[0], 200, _etag(record))

    @blueprint.patch(f"/<entity_name>/{RECORD_ID}")
    def update_record(entity_name: str, record_id: str) -> flask.Response:
        entity = api.entity(entity_name)
        return _update(api, entity, _record_id(entity, record_id))

    @blueprint.delete(f"/<entity_name>/{RECORD_ID}")
    def delete_record(entity_name: str, record_id: str) -> flask.Response:
        entity = api.entity(entity_name)
        return _delete(api, entity, _record_id(entity, record_id))

    @blueprint.post(f"/<entity_name>/{RECORD_ID}/actions/<action_name>")
    def run_action(entity_name: str, record_id: str, action_name: str) -> flask.Response:
        entity = api.entity(entity_name)
        return _action(api, entity, _record_id(entity, record_id), action_name)


def _limit_body(flask_app: flask.Flask) -> None:
    flask.request.max_content_length = int(flask_app.config.get(MAX_BODY_KEY, DEFAULT_MAX_BODY))


def register_api(flask_app: flask.Flask) -> None:
    """Serve the REST API of the deployment in ``flask_app.extensions["formwork"]`` (a
    ``Runtime``) under ``/api/v1`` (blueprint ``api_v1``).

    Schemas, the OpenAPI document and the cursor signer are built here, once. Request
    bodies are limited to ``FORMWORK_API_MAX_BODY`` bytes (default 1 MB; 413 beyond).
    Cursors are signed with the app's ``SECRET_KEY``. Unmatched URLs and methods under
    ``/api/`` get JSON errors; other paths keep the app's own error pages.
    """
    runtime: Runtime = flask_app.extensions["formwork"]
    secret = flask_app.config.get("SECRET_KEY")
    if not secret:
        raise RuntimeError("the API signs list cursors with SECRET_KEY; set it before register_api")
    schemas = build_schemas(runtime.app_model)
    api = Api(runtime, schemas, Cursors(str(secret)), openapi_document(runtime.app_model, API_PREFIX))
    blueprint = flask.Blueprint(BLUEPRINT_NAME, __name__, url_prefix=API_PREFIX)
    blueprint.before_request(lambda: _limit_body(flask_app))
    register_error_handlers(blueprint)
    _routes(blueprint, api)
    flask_app.register_blueprint(blueprint)
    _json_routing_errors(flask_app)


def _json_routing_errors(flask_app: flask.Flask) -> None:
    """404 and 405 of URLs under the API as JSON (they fail before any API view runs)."""
    for code in (NotFound, MethodNotAllowed):
        previous = flask_app.error_handler_spec.get(None, {}).get(code.code, {}).get(code)

        def handler(error: HTTPException, previous: Any = previous) -> Any:
            if flask.request.path.startswith(API_PREFIX + "/") or flask.request.path == API_PREFIX:
                response = json_response(error_body([FieldError("", (error.name or "").lower().replace(" ", "_"), error.description or "")]), error.code or 404)
                if isinstance(error, MethodNotAllowed) and error.valid_methods:
                    response.headers["Allow"] = ", ".join(error.valid_methods)
                return response
            return previous(error) if previous is not None else error

        flask_app.register_error_handler(code, handler)
