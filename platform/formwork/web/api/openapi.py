"""The OpenAPI 3.1 document of a deployment's API, generated from its compiled metadata.

Per entity: the record as the API returns it, the body of a create and of an update
(every field with its JSON type and constraints: maxLength, minimum/maximum, enum,
formats date, date-time and email, links as integer ids, child tables as arrays of row
objects), the list envelope, and the error shape of every status the API answers with.
Built once when the API is registered.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from formwork.metadata.model import STATUS_FIELD, App, Entity, Field, label_text
from formwork.records.listing import INTEGER_MAX, INTEGER_MIN
from formwork.web.api.params import DEFAULT_LIMIT, MAX_LIMIT
from formwork.web.api.schemas import text_limit

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/"
TEXT_TYPES = ("string", "text", "email", "choice", "file")
ERRORS = {
    "400": "The request is malformed: a bad query parameter, filter expression, sort field, cursor or JSON body.",
    "401": "No valid credentials: send Authorization: Bearer <token> (or log in on the screens).",
    "403": "You may not do this: your roles do not grant the action, or a field is hidden or read-only for you.",
    "404": "There is no such entity, record or action (or you may not see it).",
    "409": "The record was changed by someone else since you read it; the body names the current version.",
    "413": "The request body is larger than the API accepts.",
    "415": "The request body is not sent as application/json.",
    "422": "The values break the entity's rules; every problem is listed, nothing was written.",
    "428": "An update must name the version it read (in the body or as If-Match).",
    "500": "The server failed (e.g. a plugin crashed); nothing was written. The message holds an error id for the log.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _number(value: Any) -> int | float:
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def _describe(fld: Field, locale: str) -> dict[str, Any]:
    text = label_text(fld.description, locale) or label_text(fld.help, locale) or label_text(fld.label, locale)
    return {"description": text} if text else {}


def _input_value(fld: Field, creating: bool) -> dict[str, Any]:
    """The JSON Schema of a value of ``fld`` in the body of a create or an update."""
    kind = fld.type
    schema: dict[str, Any]
    if kind in TEXT_TYPES:
        schema = {"type": "string"}
        limit = text_limit(fld)
        if fld.max_length is not None:
            limit = min(limit or fld.max_length, fld.max_length)
        if limit is not None:
            schema["maxLength"] = limit
        if kind == "email":
            schema["format"] = "email"
        if kind == "choice" and fld.options:
            schema["enum"] = list(fld.option_values)
    elif kind == "integer":
        low = max(_number(fld.min), INTEGER_MIN) if fld.min is not None else INTEGER_MIN
        high = min(_number(fld.max), INTEGER_MAX) if fld.max is not None else INTEGER_MAX
        schema = {"type": "integer", "format": "int32", "minimum": low, "maximum": high}
    elif kind == "link":
        schema = {"type": "integer", "minimum": 1, "maximum": INTEGER_MAX, "description": f"the id of a {fld.to} record"}
    elif kind == "decimal":
        precision, scale = fld.digits or (18, 2)
        bound = 10 ** (precision - scale)
        schema = {"type": "number", "exclusiveMinimum": -bound, "exclusiveMaximum": bound}
        if scale:
            schema["multipleOf"] = float(Decimal(1).scaleb(-scale))
        if fld.min is not None:
            schema["minimum"] = _number(fld.min)
        if fld.max is not None:
            schema["maximum"] = _number(fld.max)
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "date":
        schema = {"type": "string", "format": "date"}
    elif kind == "datetime":
        schema = {"type": "string", "format": "date-time"}
    elif kind == "table":
        schema = {"type": "array", "items": _ref(f"{fld.entity}_row_{'create' if creating else 'update'}")}
        if fld.required:
            schema["minItems"] = 1
        return schema
    else:  # json: any JSON value
        return {}
    return _nullable(schema)


def _output_value(fld: Field) -> dict[str, Any]:
    """The JSON Schema of a value of ``fld`` in a response: its JSON type (rules are the
    input's business), a link as an id or, expanded, the linked record."""
    kind = fld.type
    if kind in TEXT_TYPES:
        return {"type": ["string", "null"]}
    if kind == "integer":
        return {"type": ["integer", "null"]}
    if kind == "decimal":
        return {"type": ["number", "null"]}
    if kind == "boolean":
        return {"type": ["boolean", "null"]}
    if kind == "date":
        return {"type": ["string", "null"], "format": "date"}
    if kind == "datetime":
        return {"type": ["string", "null"], "format": "date-time"}
    if kind == "link":
        return _link_output(fld.to or "")
    if kind == "table":
        return {"type": "array", "items": _ref(f"{fld.entity}_row")}
    return {}


def _link_output(target: str) -> dict[str, Any]:
    return {"anyOf": [{"type": ["integer", "null"]}, _ref(target), _ref("unreadable_record")]}


def _is_computed(fld: Field) -> bool:
    return fld.compute is not None or fld.compute_hook is not None


def _input_object(app: App, entity: Entity, creating: bool, row: bool = False) -> dict[str, Any]:
    """The body of a create (``creating``) or an update, or one child row (``row``)."""
    locale = app.default_locale
    properties: dict[str, Any] = {}
    required: list[str] = []
    if row and not creating:
        properties["id"] = {"type": "integer", "minimum": 1, "maximum": INTEGER_MAX, "description": "the id of a row of this record to keep and update; rows without id are added"}
    for fld in entity.fields.values():
        schema = {**_input_value(fld, creating), **_describe(fld, locale)}
        if _is_computed(fld) or fld.read_only:
            schema["readOnly"] = True
        properties[fld.name] = schema
        number_field = entity.number is not None and entity.number.field == fld.name
        if creating and fld.required and fld.default is None and not _is_computed(fld) and not number_field and not fld.read_only and fld.type != "table":
            required.append(fld.name)
    if not row and not creating:
        properties["version"] = {"type": "integer", "minimum": 1, "maximum": INTEGER_MAX, "description": "the version you read (or send If-Match)"}
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _record_object(app: App, entity: Entity) -> dict[str, Any]:
    """A record as the API returns it (``fields=`` may leave fields out)."""
    locale = app.default_locale
    properties: dict[str, Any] = {
        "id": {"type": "integer"},
        "version": {"type": "integer", "description": "raised by every save; send it back with an update"},
        "created_at": {"type": "string", "format": "date-time"},
        "created_by": _link_output("user"),
        "updated_at": {"type": "string", "format": "date-time"},
        "updated_by": _link_output("user"),
    }
    if entity.has_status and STATUS_FIELD not in entity.fields:
        properties[STATUS_FIELD] = {"type": ["string", "null"], "readOnly": True, "description": "changed only by the workflow"}
    for fld in entity.fields.values():
        schema = {**_output_value(fld), **_describe(fld, locale)}
        if _is_computed(fld) or fld.read_only:
            schema["readOnly"] = True
        properties[fld.name] = schema
    return {"type": "object", "required": ["id", "version"], "properties": properties, "additionalProperties": False}


def _row_object(entity: Entity) -> dict[str, Any]:
    properties: dict[str, Any] = {"id": {"type": "integer"}}
    properties.update({f.name: _output_value(f) for f in entity.stored_fields()})
    return {"type": "object", "required": ["id"], "properties": properties, "additionalProperties": False}


def _error_schemas() -> dict[str, Any]:
    error = {
        "type": "object",
        "required": ["field", "code", "message"],
        "properties": {
            "field": {"type": "string", "description": 'the field at fault ("lines[2].quantity" for a child row; "" for the whole request)'},
            "code": {"type": "string", "description": "a stable code, e.g. required, min, unique, stale, type, unknown_field"},
            "message": {"type": "string"},
            "row": {"type": "integer"},
        },
        "additionalProperties": False,
    }
    errors = {"type": "object", "required": ["errors"], "properties": {"errors": {"type": "array", "items": _ref("error")}}}
    stale = {
        "type": "object",
        "required": ["errors", "current_version"],
        "properties": {"errors": {"type": "array", "items": _ref("error")}, "current_version": {"type": "integer"}},
    }
    unreadable = {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "integer"}},
        "additionalProperties": False,
        "description": "an expanded link to a record you may not read",
    }
    return {"error": error, "errors": errors, "stale": stale, "unreadable_record": unreadable}


def _responses(*codes: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for code in codes:
        schema = _ref("stale") if code == "409" else _ref("errors")
        found[code] = {"description": ERRORS[code], "content": {"application/json": {"schema": schema}}}
    return found


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any], status: str = "200", etag: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if etag:
        response["headers"] = {"ETag": {"description": 'the record\'s version, e.g. "3"; send it as If-Match', "schema": {"type": "string"}}}
    return {status: response}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


FIELDS_PARAM = _query("fields", {"type": "string"}, "comma-separated fields to return (id and version always come)")
EXPAND_PARAM = _query("expand", {"type": "string"}, "comma-separated link paths to return as records, e.g. department,lines.product")
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": INTEGER_MAX}}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}, "description": 'the version you read, e.g. "3"'}


def _list_parameters(entity: Entity) -> list[dict[str, Any]]:
    params = [
        _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "records per page"),
        _query("offset", {"type": "integer", "minimum": 0, "maximum": INTEGER_MAX}, "records to skip (not with cursor)"),
        _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
        _query("sort", {"type": "string"}, "comma-separated fields, -field for descending; id breaks ties"),
        _query("count", {"type": "boolean"}, "true: the response carries the total count"),
        _query("filter", {"type": "string"}, "a condition in the expression language, e.g. amount > 100 and department.name == 'IT'"),
        _query("search", {"type": "string"}, "text matched against the list's search fields"),
        FIELDS_PARAM,
        EXPAND_PARAM,
    ]
    ops = "field__op=value with op one of eq ne gt gte lt lte in contains startswith isnull"
    for fld in entity.stored_fields():
        params.append(_query(fld.name, {"type": "string"}, f"records whose {fld.name} equals this value ({ops})"))
    return params


def _entity_paths(app: App, entity: Entity, prefix: str) -> dict[str, Any]:
    name = entity.name
    label = label_text(entity.label, app.default_locale, name)
    collection = {
        "get": {
            "operationId": f"list_{name}",
            "summary": f"List {label} records",
            "tags": [name],
            "parameters": _list_parameters(entity),
            "responses": {**_ok("a page of records", _ref(f"{name}_list")), **_responses("400", "500")},
        },
        "post": {
            "operationId": f"create_{name}",
            "summary": f"Create a {label} record",
            "tags": [name],
            "requestBody": _json_body(_ref(f"{name}_create")),
            "responses": {**_ok("the record as stored", _ref(name), "201", etag=True), **_responses("400", "413", "415", "422", "500")},
        },
    }
    item = {
        "parameters": [ID_PARAM],
        "get": {
            "operationId": f"get_{name}",
            "summary": f"Read a {label} record with its child rows",
            "tags": [name],
            "parameters": [FIELDS_PARAM, EXPAND_PARAM],
            "responses": {**_ok("the record", _ref(name), etag=True), **_responses("400", "404", "500")},
        },
        "patch": {
            "operationId": f"update_{name}",
            "summary": f"Change fields of a {label} record",
            "tags": [name],
            "parameters": [IF_MATCH],
            "requestBody": _json_body(_ref(f"{name}_update")),
            "responses": {**_ok("the record as stored", _ref(name), etag=True), **_responses("400", "404", "409", "413", "415", "422", "428", "500")},
        },
        "delete": {
            "operationId": f"delete_{name}",
            "summary": f"Delete a {label} record",
            "tags": [name],
            "parameters": [IF_MATCH, _query("version", {"type": "integer", "minimum": 1, "maximum": INTEGER_MAX}, "the version you read")],
            "responses": {"204": {"description": "deleted"}, **_responses("400", "404", "409", "422", "500")},
        },
    }
    paths = {f"{prefix}/{name}": collection, f"{prefix}/{name}/{{id}}": item}
    for action in entity.actions.values():
        paths[f"{prefix}/{name}/{{id}}/actions/{action.name}"] = {
            "parameters": [ID_PARAM],
            "post": {
                "operationId": f"{name}_action_{action.name}",
                "summary": label_text(action.label, app.default_locale, action.name),
                "tags": [name],
                "parameters": [IF_MATCH],
                "requestBody": _json_body(
                    {"type": "object", "properties": {"version": {"type": "integer", "minimum": 1, "maximum": INTEGER_MAX}}, "additionalProperties": False},
                    required=False,
                ),
                "responses": {
                    **_ok(
                        "the action ran; the record as it is now (null when the action deleted it)",
                        {
                            "type": "object",
                            "required": ["action", "result", "record"],
                            "properties": {"action": {"type": "string"}, "result": {}, "record": {"anyOf": [_ref(name), {"type": "null"}]}},
                        },
                    ),
                    **_responses("400", "404", "409", "413", "415", "422", "500"),
                },
            },
        }
    return paths


def openapi_document(app: App, prefix: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s API served under ``prefix``."""
    schemas: dict[str, Any] = _error_schemas()
    paths: dict[str, Any] = {
        prefix: {
            "get": {
                "operationId": "index",
                "summary": "The entities of this API",
                "responses": {
                    **_ok(
                        "the entities",
                        {
                            "type": "object",
                            "required": ["app", "openapi", "entities"],
                            "properties": {
                                "app": {"type": "string"},
                                "openapi": {"type": "string"},
                                "entities": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["name", "label", "url"],
                                        "properties": {"name": {"type": "string"}, "label": {"type": "string"}, "url": {"type": "string"}},
                                    },
                                },
                            },
                        },
                    )
                },
            }
        },
        f"{prefix}/openapi.json": {
            "get": {"operationId": "openapi", "summary": "This document", "responses": _ok("the OpenAPI document", {"type": "object"})}
        },
    }
    for entity in app.entities.values():
        schemas[entity.name] = _record_object(app, entity)
        if entity.is_child:
            schemas[f"{entity.name}_row"] = _row_object(entity)
            schemas[f"{entity.name}_row_create"] = _input_object(app, entity, creating=True, row=True)
            schemas[f"{entity.name}_row_update"] = _input_object(app, entity, creating=False, row=True)
            continue
        schemas[f"{entity.name}_create"] = _input_object(app, entity, creating=True)
        schemas[f"{entity.name}_update"] = _input_object(app, entity, creating=False)
        schemas[f"{entity.name}_list"] = {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": _ref(entity.name)},
                "next_cursor": {"type": ["string", "null"], "description": "send as ?cursor= for the next page; null on the last page"},
                "count": {"type": "integer", "description": "all matching records (only with count=true)"},
            },
            "additionalProperties": False,
        }
        paths.update(_entity_paths(app, entity, prefix))
    _declare_security(paths, public={prefix, f"{prefix}/openapi.json"})
    title = label_text(app.label, app.default_locale, app.name)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": f"{title} API", "version": app.version or "0", "description": "Records of every entity; generated from the deployment's metadata."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    }


def _declare_security(paths: dict[str, Any], public: set[str]) -> None:
    """Every operation outside ``public`` answers 401 without credentials and 403 when the
    caller's roles refuse it; the ``public`` ones need no credentials."""
    for path, item in paths.items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path in public:
                operation["security"] = []
            else:
                operation["responses"] = {**operation["responses"], **_responses("401", "403")}
