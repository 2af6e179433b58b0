"""The query string of a list request, read into a ``RecordQuery`` and the API's options.

``?field=value`` and ``?field__op=value`` are conditions; ``filter`` an expression;
``sort``, ``limit``, ``offset``, ``cursor``, ``count``, ``fields``, ``expand`` and
``search`` are options. Every problem is collected and reported at once (HTTP 400).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from werkzeug.datastructures import MultiDict

from formwork.metadata.model import Entity
from formwork.problems import did_you_mean
from formwork.records import FieldError, RecordQuery
from formwork.records.coerce import FALSE_WORDS, TRUE_WORDS
from formwork.records.listing import INTEGER_MAX
from formwork.records.query import Condition
from formwork.records.rows import record_columns
from formwork.web.api.cursor import BadCursor, Cursors
from formwork.web.api.schemas import text_problem

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
OPTIONS = ("limit", "offset", "cursor", "sort", "count", "fields", "expand", "filter", "search")
OP_SEPARATOR = "__"


@dataclass(frozen=True)
class ListRequest:
    """A list request: the query for the record service plus what the response shows."""

    query: RecordQuery
    fields: tuple[str, ...] | None = None
    expand: tuple[str, ...] = ()
    count: bool = False
    errors: list[FieldError] = field(default_factory=list)


def split_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _number(args: MultiDict[str, str], name: str, default: int, low: int, high: int | None, errors: list[FieldError]) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f"{low} or more"
        errors.append(FieldError(name, name, f"must be a whole number, {allowed}"))
        return default
    return value


def _flag(args: MultiDict[str, str], name: str, errors: list[FieldError]) -> bool:
    raw = (args.get(name) or "false").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw not in FALSE_WORDS:
        errors.append(FieldError(name, name, "must be true or false"))
    return False


def shown_names(entity: Entity) -> list[str]:
    """Every name a record of ``entity`` shows in the API (system columns, fields, tables)."""
    return [*record_columns(entity), *(f.name for f in entity.fields.values() if not f.is_stored)]


def read_fields(entity: Entity, text: str | None, errors: list[FieldError]) -> tuple[str, ...] | None:
    """The names ``?fields=`` selects (None: all), each checked against the entity."""
    if text is None:
        return None
    names = split_list(text)
    known = shown_names(entity)
    for name in names:
        if name not in known:
            hint = did_you_mean(name, known)
            errors.append(FieldError("fields", "unknown_field", f"'{name}' is not a field of {entity.name}" + (f" ({hint})" if hint else "")))
    return names


def _conditions(args: MultiDict[str, str]) -> Iterable[Condition]:
    for key, value in args.items(multi=True):
        if key in OPTIONS:
            continue
        name, _sep, op = key.partition(OP_SEPARATOR)
        yield Condition(name, op or "eq", value)


def read_list_request(entity: Entity, args: MultiDict[str, str], cursors: Cursors) -> ListRequest:
    """The list request of ``args``; problems found are in ``ListRequest.errors``."""
    errors: list[FieldError] = []
    for key, value in args.items(multi=True):
        problem = text_problem(key) or text_problem(value)
        if problem:
            errors.append(FieldError(key if not text_problem(key) else "", "type", problem))
    if errors:
        return ListRequest(RecordQuery(), errors=errors)
    limit = _number(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, errors)
    offset = _number(args, "offset", 0, 0, INTEGER_MAX, errors)
    sort = split_list(args.get("sort", ""))
    after = None
    if args.get("cursor"):
        if offset:
            errors.append(FieldError("offset", "offset", "cannot be combined with a cursor"))
        try:
            after = cursors.read(args["cursor"], sort)
        except BadCursor as bad:
            errors.append(FieldError("cursor", "cursor", str(bad)))
    query = RecordQuery(
        sort=sort,
        # one more than asked: whether a next page exists
        limit=limit + 1,
        offset=offset,
        search=args.get("search") or None,
        conditions=tuple(_conditions(args)),
        expression=args.get("filter") or None,
        after=after,
    )
    return ListRequest(
        query=query,
        fields=read_fields(entity, args.get("fields"), errors),
        expand=split_list(args.get("expand", "")),
        count=_flag(args, "count", errors),
        errors=errors,
    )
