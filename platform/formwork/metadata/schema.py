"""Check metadata objects against the JSON Schemas in ``schemas/*.json`` and say what is wrong in plain words.

Every schema error becomes a ``Problem`` at the place of the offending node
(or of its parent mapping for a missing key). Offending nodes are then pruned
from the object, so the later stages read only well-typed values and a single
mistake is reported once, not again as a knock-on error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from formwork.metadata.loader import Located, LocatedList, dotted, place_at
from formwork.problems import Problem, did_you_mean

KINDS = ("app", "entity", "form", "workflow", "approval", "role", "report")
# Keys that steer layer merging (see layers.py); they never reach the schemas.
OVERRIDE_MARKERS = ("$remove", "$replace", "$before", "$after")
_BASE_URI = "https://formwork.dev/schemas/"

_TYPE_WORDS = {
    "string": "a text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}


def _schema_text(filename: str) -> dict:
    return json.loads(resources.files("formwork.metadata").joinpath("schemas", filename).read_text("utf-8"))


def load_schemas() -> dict[str, dict]:
    """Every JSON Schema shipped in the package: one per kind, plus ``definitions`` shared by them."""
    return {name: _schema_text(f"{name}.json") for name in ("definitions", *KINDS)}


@cache
def _schemas() -> dict[str, dict]:
    return load_schemas()


@cache
def _validators() -> dict[str, Draft202012Validator]:
    schemas = _schemas()
    registry = Registry().with_resources(
        (_BASE_URI + f"{name}.json", Resource.from_contents(schema)) for name, schema in schemas.items()
    )
    return {kind: Draft202012Validator(schemas[kind], registry=registry) for kind in KINDS}


def kind_schema(kind: str) -> dict:
    """The JSON Schema of one kind, as written in ``schemas/<kind>.json``."""
    return _validators()[kind].schema


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    return repr(value) if isinstance(value, str) else str(value)


def _type_words(expected: str | list[str]) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    if set(names) == {"number", "string"}:
        return "a number or a text"
    return " or ".join(_TYPE_WORDS.get(n, n) for n in names)


def _messages(error: ValidationError) -> Iterator[tuple[str, str, list, str | None]]:
    """(code, message, path, hint) for one jsonschema error; paths are relative to the object root."""
    path = list(error.absolute_path)
    validator = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if validator == "additionalProperties":
        known = list(schema.get("properties", {}))
        for key in instance:
            if key in known:
                continue
            if key.startswith("$"):
                hint = did_you_mean(key, OVERRIDE_MARKERS) or f"override markers: {', '.join(OVERRIDE_MARKERS)}"
            else:
                hint = did_you_mean(key, known) or (f"known keys: {', '.join(known)}" if known else None)
            yield "FW-E101", f"unknown key '{key}'", [*path, key], hint
    elif validator == "required":
        for key in error.validator_value:
            if isinstance(instance, dict) and key not in instance:
                yield "FW-E103", f"missing required key '{key}'", path, None
    elif validator == "type":
        expected = schema.get("x-expected") or _type_words(error.validator_value)
        yield "FW-E102", f"must be {expected}, not {_describe(instance)}", path, None
    elif validator in ("enum", "const"):
        allowed = error.validator_value if validator == "enum" else [error.validator_value]
        hint = did_you_mean(instance, [str(a) for a in allowed]) if isinstance(instance, str) else None
        yield "FW-E104", f"{_describe(instance)} must be one of: {', '.join(str(a) for a in allowed)}", path, hint
    elif validator in ("anyOf", "oneOf"):
        expected = schema.get("x-expected")
        if expected:
            yield "FW-E107", f"must be {expected}, not {_describe(instance)}", path, None
        else:
            yield from _messages(best_match(error.context))
    elif validator == "pattern":
        expected = schema.get("x-expected", f"text matching {error.validator_value}")
        yield "FW-E106", f"{_describe(instance)} is not {expected}", path, None
    elif validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "exclusiveMinimum": "more than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[validator]
        yield "FW-E105", f"must be {words} {error.validator_value}, not {_describe(instance)}", path, None
    elif validator in ("minItems", "maxItems"):
        expected = schema.get("x-expected")
        if expected:
            yield "FW-E105", f"must be {expected}", path, None
        elif validator == "minItems" and error.validator_value == 1:
            yield "FW-E105", "must not be empty", path, None
        else:
            words = "at least" if validator == "minItems" else "at most"
            yield "FW-E105", f"must have {words} {error.validator_value} items", path, None
    elif validator in ("minLength", "minProperties"):
        yield "FW-E105", "must not be empty", path, None
    else:
        yield "FW-E108", f"is not valid: {error.message}", path, None


def schema_problems(kind: str, data: Located) -> list[Problem]:
    """Every schema error of one object (of a known ``kind``), with offending nodes pruned afterwards."""
    problems = []
    doomed: list[list] = []
    for error in _validators()[kind].iter_errors(data):
        for code, message, path, hint in _messages(error):
            place = place_at(data, path)
            if code == "FW-E101":
                parent = _node_at(data, path[:-1])
                if isinstance(parent, Located):
                    place = parent.place_of(path[-1])
            problems.append(Problem(code, message, place, dotted(path), hint))
            if code != "FW-E103" and path:
                doomed.append(path)
    _prune(data, doomed)
    return problems


def _node_at(data: Any, path: list) -> Any:
    node = data
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _prune(data: Located, paths: list[list]) -> None:
    """Delete the nodes at ``paths``; list items are removed from the highest index down."""
    targets: list[tuple[Any, Any]] = []
    for path in paths:
        parent = _node_at(data, path[:-1])
        if parent is not None:
            targets.append((parent, path[-1]))
    lists = [(p, k) for p, k in targets if isinstance(p, list) and isinstance(k, int)]
    for parent, key in targets:
        if isinstance(parent, dict) and key in parent:
            del parent[key]
            if isinstance(parent, Located):
                parent.key_places.pop(key, None)
                parent.value_places.pop(key, None)
    for parent, index in sorted(set((id(p), i) for p, i in lists), reverse=True):
        owner = next(p for p, _ in lists if id(p) == parent)
        if index < len(owner):
            del owner[index]
            if isinstance(owner, LocatedList) and index < len(owner.item_places):
                del owner.item_places[index]


_SHARED_REF = "definitions.json#/$defs/"
_LOCAL_REF = "#/$defs/"


def label_paths(kind: str, data: Any) -> Iterator[list]:
    """Paths of every label written as a map of locales in an object (schema-checked) of ``kind``."""
    schemas = _schemas()
    yield from _labels(schemas[kind], data, [], schemas[kind].get("$defs", {}), schemas["definitions"]["$defs"])


def _labels(schema: dict, data: Any, path: list, local: dict, shared: dict) -> Iterator[list]:
    ref = schema.get("$ref", "")
    if ref == _SHARED_REF + "label":
        if isinstance(data, dict):
            yield path
        return
    if ref.startswith(_SHARED_REF):
        # Inside definitions.json, '#/$defs/...' refers to definitions.json itself.
        yield from _labels(shared[ref[len(_SHARED_REF):]], data, path, shared, shared)
        return
    if ref.startswith(_LOCAL_REF):
        yield from _labels(local[ref[len(_LOCAL_REF):]], data, path, local, shared)
        return
    if isinstance(data, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in data.items():
            sub = properties.get(key, extra)
            if isinstance(sub, dict):
                yield from _labels(sub, value, [*path, key], local, shared)
        for alternative in schema.get("anyOf", ()):
            if alternative.get("type") == "object":
                yield from _labels(alternative, data, path, local, shared)
    elif isinstance(data, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(data):
            yield from _labels(schema["items"], item, [*path, index], local, shared)
