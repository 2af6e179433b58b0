"""JSON in and out of the API.

Bodies are read strictly (an ``application/json`` object, numbers with a fraction read as
exact decimals, no NaN or Infinity) and responses are written with decimals as exact
JSON numbers: ``12.50`` stays ``12.50``, never a binary float's ``12.5000000001``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import flask

from formwork.records import FieldError

BODY_FIELD = ""
JSON_TYPE = "application/json"
NUMBER_TAG = f"\x00{secrets.token_hex(8)}:"
_NUMBER_TEXT = re.compile('"' + re.escape(json.dumps(NUMBER_TAG)[1:-1]) + r'(-?[0-9]+(?:\.[0-9]+)?)"')


class BodyRefused(Exception):
    """The body is not what the API reads: ``status`` and the error to show."""

    def __init__(self, status: int, code: str, message: str):
        self.status = status
        self.error = FieldError(BODY_FIELD, code, message)
        super().__init__(message)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json_object(request: flask.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; ``BodyRefused`` for a wrong content type (415), text that
    is not JSON or not an object (400). An empty body is ``{}`` when ``optional``. A body
    over the request's size limit raises werkzeug's 413 while it is read."""
    data = request.get_data(cache=True)
    if not data.strip() and optional:
        return {}
    if request.mimetype != JSON_TYPE and not request.mimetype.endswith("+json"):
        raise BodyRefused(415, "content_type", f"send the record as JSON with Content-Type: {JSON_TYPE}")
    try:
        text = data.decode("utf-8")
        body = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise BodyRefused(400, "json", f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise BodyRefused(400, "json", "the body must be a JSON object")
    return body


def exact_number(value: Decimal) -> str:
    """A stand-in for ``value`` that ``to_json`` writes as the exact JSON number ``12.50``.

    The standard library's (fast, C) JSON encoder knows no decimals; the stand-in is a string
    no record can hold (it starts with a NUL character, which the API refuses in text, and a
    per-process random tag), replaced by the number's digits after encoding."""
    return f"{NUMBER_TAG}{format(value, 'f')}"


def _other(value: Any) -> Any:
    if isinstance(value, Decimal):
        return exact_number(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def to_json(value: Any) -> str:
    """``value`` as JSON text; decimals as exact numbers, dates and times in ISO 8601.
    Raises ``TypeError`` for values that are not JSON data."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_other)
    return _NUMBER_TEXT.sub(r"\1", text)


def json_response(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> flask.Response:
    """A JSON response of ``value`` (see ``to_json``)."""
    return flask.Response(to_json(value), status=status, mimetype=JSON_TYPE, headers=dict(headers or {}))
