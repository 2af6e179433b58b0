"""marshmallow schemas generated from the entities: reading request bodies, writing records.

One schema per entity (and per child entity, for its rows), built once when the API is
registered. Loading checks what JSON itself can get wrong, in the API's strict terms:
each value must have its field's JSON type (a number for a decimal, an ISO string for a
date, an integer id for a link), text must fit its column and hold no NUL character,
integers must fit the database's integer column. Everything else (unknown and system
fields, required, ranges, options, checks, links, uniqueness) is judged by the record
service, the one write path, with the same error shape. Dumping gives the record's JSON:
``id``, ``version``, the system columns, fields by name, links as ids, child rows as
lists of row objects, decimals as ``Decimal`` (written as exact JSON numbers), dates and
times in ISO 8601.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields

from formwork.metadata.model import STATUS_FIELD, App, Entity, Field
from formwork.records import FieldError
from formwork.records.coerce import to_utc
from formwork.records.listing import INTEGER_MAX, INTEGER_MIN
from formwork.storage.tables import column_type
from formwork.web.api.payload import exact_number


class Coded(str):
    """An error message that knows its error code, so it survives marshmallow's error dicts."""

    code: str

    def __new__(cls, code: str, message: str) -> Coded:
        made = super().__new__(cls, message)
        made.code = code
        return made


def _wrong(code: str, message: str) -> ValidationError:
    return ValidationError(Coded(code, message))


def text_limit(fld: Field) -> int | None:
    """The most characters the field's column holds (None: unlimited)."""
    length = getattr(column_type(fld), "length", None)
    return length if isinstance(length, int) else None


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (NUL characters, broken surrogates), or None."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    return None


def _integer(value: Any, message: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _wrong("type", message)
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise _wrong("type", message)
        value = int(value)
    if value < INTEGER_MIN:
        raise _wrong("min", f"must be at least {INTEGER_MIN}")
    if value > INTEGER_MAX:
        raise _wrong("max", f"must be at most {INTEGER_MAX}")
    return value


class TextValue(fields.String):
    """A JSON string that fits the column (``limit`` characters) and the database."""

    def __init__(self, limit: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.limit = limit

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _wrong("type", "must be text")
        problem = text_problem(value)
        if problem:
            raise _wrong("type", problem)
        if self.limit is not None and len(value) > self.limit:
            raise _wrong("max_length", f"must be at most {self.limit} characters")
        return value


class IntegerValue(fields.Integer):
    """A JSON integer within the database's integer range."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int | None:
        return None if value is None else _integer(value, "must be a whole number")


class LinkValue(fields.Integer):
    """A link: the id of the target record, a JSON integer."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int | None:
        return None if value is None else _integer(value, "must be the id of a record")


class DecimalValue(fields.Decimal):
    """A JSON number, read exactly; written as an exact JSON number."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else exact_number(value)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise _wrong("type", "must be a number")
        return Decimal(value)


class BooleanValue(fields.Boolean):
    """JSON true or false."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise _wrong("type", "must be true or false")


class DateValue(fields.Date):
    """A date as an ISO 8601 string, ``YYYY-MM-DD``."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> date | None:
        if value is None:
            return None
        message = "must be a date (YYYY-MM-DD)"
        if not isinstance(value, str) or len(value) != len("YYYY-MM-DD"):
            raise _wrong("type", message)
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _wrong("type", message) from None


class DateTimeValue(fields.DateTime):
    """A date and time as an ISO 8601 string; without a time zone it is UTC."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> datetime | None:
        if value is None:
            return None
        message = "must be a date and time (YYYY-MM-DDTHH:MM:SS, with a time zone or in UTC)"
        if not isinstance(value, str) or text_problem(value):
            raise _wrong("type", message)
        try:
            return to_utc(datetime.fromisoformat(value))
        except (ValueError, OverflowError):
            raise _wrong("type", message) from None


class JsonValue(fields.Raw):
    """Any JSON value; numbers with a fraction are kept as JSON numbers (floats) for storage."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        return _plain_json(value)


def _plain_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        number = float(value)
        if number in (float("inf"), float("-inf")):
            raise _wrong("type", "holds a number too large to store")
        return number
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise _wrong("type", f"holds text that {problem.removeprefix('is ')}")
        return value
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    if isinstance(value, dict):
        return {_plain_json(str(k)): _plain_json(v) for k, v in value.items()}
    return value


class RowsValue(fields.Field):
    """A table field: a list of row objects, each read with the child entity's schema."""

    def __init__(self, rows: Schema, **kwargs: Any):
        super().__init__(**kwargs)
        self.rows = rows

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else self.rows.dump(value, many=True)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise _wrong("type", "must be a list of rows")
        return self.rows.load(value, many=True, unknown=INCLUDE)


def value_field(fld: Field, rows: Schema | None = None) -> fields.Field:
    """The marshmallow field of one entity field."""
    kind = fld.type
    if kind in ("string", "text", "email", "choice", "file"):
        # a declared max_length is the record service's rule; the column's own size is ours
        return TextValue(text_limit(fld) if fld.max_length is None else None, allow_none=True)
    if kind == "integer":
        return IntegerValue(allow_none=True)
    if kind == "link":
        return LinkValue(allow_none=True)
    if kind == "decimal":
        return DecimalValue(allow_none=True)
    if kind == "boolean":
        return BooleanValue(allow_none=True)
    if kind == "date":
        return DateValue(allow_none=True)
    if kind == "datetime":
        return DateTimeValue(format="iso", allow_none=True)
    if kind == "json":
        return JsonValue(allow_none=True)
    if kind == "table" and rows is not None:
        return RowsValue(rows, allow_none=True)
    raise ValueError(f"field {fld.name!r} has type {kind!r}, which the API cannot carry")


def _system_fields(entity: Entity) -> dict[str, fields.Field]:
    made: dict[str, fields.Field] = {
        "id": fields.Integer(dump_only=True),
        "version": fields.Integer(dump_only=True),
        "created_at": fields.DateTime(format="iso", dump_only=True),
        "created_by": fields.Integer(dump_only=True, allow_none=True),
        "updated_at": fields.DateTime(format="iso", dump_only=True),
        "updated_by": fields.Integer(dump_only=True, allow_none=True),
    }
    if entity.has_status and STATUS_FIELD not in entity.fields:
        made[STATUS_FIELD] = fields.String(dump_only=True, allow_none=True)
    return made


class ValueProblems(Exception):
    """Values of a body that do not have their field's JSON type, each as a ``FieldError``."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


@dataclass(frozen=True)
class EntitySchema:
    """The marshmallow schema of one entity (``schema``), for loading bodies and dumping
    records."""

    entity: Entity
    schema: Schema

    def load(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The values of ``body`` in their Python types. Keys that are not writable fields
        pass through unread, for the record service to judge. Raises ``ValueProblems``."""
        try:
            return self.schema.load(body, unknown=INCLUDE)
        except ValidationError as error:
            raise ValueProblems(_flatten(error.messages, "")) from None

    def unread_keys(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``body`` that are not writable fields of the entity."""
        return {k: v for k, v in body.items() if k not in self.schema.load_fields}

    def dump(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record as API JSON values (child rows only when the record holds them)."""
        return self.schema.dump(record)


def _flatten(messages: Any, path: str) -> list[FieldError]:
    if isinstance(messages, dict):
        found: list[FieldError] = []
        for key, inner in messages.items():
            if isinstance(key, int):
                found += _flatten(inner, f"{path}[{key}]")
            else:
                found += _flatten(inner, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(messages, list):
        return [FieldError(path, getattr(m, "code", "type"), str(m)) for m in messages]
    return [FieldError(path, getattr(messages, "code", "type"), str(messages))]


def build_schemas(app: App) -> dict[str, EntitySchema]:
    """Entity name -> its schema, for every entity of ``app`` (child entities included:
    their schema reads and writes one row)."""
    rows: dict[str, Schema] = {}
    for entity in app.entities.values():
        if entity.is_child:
            row_fields: dict[str, fields.Field] = {"id": LinkValue(allow_none=True)}
            row_fields.update({f.name: value_field(f) for f in entity.stored_fields()})
            rows[entity.name] = Schema.from_dict(row_fields, name=f"{entity.name}_row")()
    built: dict[str, EntitySchema] = {}
    for entity in app.entities.values():
        made = _system_fields(entity)
        for fld in entity.fields.values():
            made[fld.name] = value_field(fld, rows.get(fld.entity or ""))
        built[entity.name] = EntitySchema(entity, Schema.from_dict(made, name=entity.name)())
    return built
