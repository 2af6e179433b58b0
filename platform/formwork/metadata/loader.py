"""Read metadata files into plain data that remembers where every node came from.

YAML and JSON are read with PyYAML's safe composer only: no Python tags, no
constructors, aliases expanded under a hard budget so an alias bomb is refused
instead of expanded. Mappings come back as ``Located`` dicts and sequences as
``LocatedList``; both know their own place and the places of their members,
which is how validation reports ``file:line: path``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from formwork.problems import Place, Problem

METADATA_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 2 * 1024 * 1024
# Nodes a single file may expand to; an alias bomb of a few lines would expand to billions.
MAX_NODES = 200_000

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:merge",
}


class Located(dict):
    """A mapping that knows its place and the place of each key and value."""

    place: Place
    key_places: dict[str, Place]
    value_places: dict[str, Place]

    def __init__(self, *args: Any, place: Place | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.place = place or Place("<unknown>")
        self.key_places = {}
        self.value_places = {}

    def place_of(self, key: str) -> Place:
        """Where ``key`` was written, or this mapping's place when it was not."""
        return self.key_places.get(key) or self.place

    def value_place(self, key: str) -> Place:
        return self.value_places.get(key) or self.place_of(key)


class LocatedList(list):
    """A sequence that knows its place and the place of each item."""

    place: Place
    item_places: list[Place]

    def __init__(self, *args: Any, place: Place | None = None):
        super().__init__(*args)
        self.place = place or Place("<unknown>")
        self.item_places = []

    def place_of(self, index: int) -> Place:
        if 0 <= index < len(self.item_places):
            return self.item_places[index]
        return self.place


def place_at(data: Any, path: list | tuple) -> Place | None:
    """The place of the node reached by following ``path`` (keys and indexes) from ``data``."""
    node = data
    best = getattr(data, "place", None)
    for step in path:
        if isinstance(node, Located) and step in node:
            best = node.value_place(step)
            node = node[step]
        elif isinstance(node, LocatedList) and isinstance(step, int) and step < len(node):
            best = node.place_of(step)
            node = node[step]
        else:
            break
        own = getattr(node, "place", None)
        if own is not None:
            best = own
    return best


def dotted(path: list | tuple) -> str:
    """``['fields', 'amount', 'min']`` -> ``fields.amount.min``; indexes as ``steps[1]``."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += ("." if text else "") + str(step)
    return text


@dataclass(frozen=True)
class SourceFile:
    """One metadata file's content; ``data`` is None when it could not be read."""

    path: Path
    display: str
    data: Located | None
    text: str = ""


class _Budget:
    """Counts expanded nodes and turns scalar nodes into values, for one file."""

    def __init__(self) -> None:
        self.nodes = 0
        self._constructor = yaml.SafeLoader("")

    def scalar_value(self, node: yaml.ScalarNode) -> Any:
        # Dates stay text: the schema and the expression language parse them where a date is meant.
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value
        # SafeConstructor resolves plain scalars (ints, floats, bools, null) the YAML 1.1 way.
        return self._constructor.construct_object(node, deep=True)


class _Refused(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem


def _place(display: str, mark: Any) -> Place:
    return Place(display, mark.line + 1, mark.column + 1)


def _convert(node: yaml.Node, display: str, budget: _Budget) -> Any:
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise _Refused(
            Problem(
                "FW-E005",
                f"file expands to more than {MAX_NODES} nodes (aliases refused past this bound)",
                _place(display, node.start_mark),
                hint="an alias bomb or a runaway file; write the data out instead of nesting aliases",
            )
        )
    if node.tag not in _STANDARD_TAGS:
        raise _Refused(
            Problem(
                "FW-E006",
                f"tag '{node.tag}' is not allowed in metadata",
                _place(display, node.start_mark),
                hint="metadata is data only; code belongs in a plugin referred to by name",
            )
        )
    if isinstance(node, yaml.MappingNode):
        result = Located(place=_place(display, node.start_mark))
        for key_node, value_node in _flatten_merge(node):
            key = _convert(key_node, display, budget)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise _Refused(
                    Problem(
                        "FW-E007",
                        "mapping keys must be plain strings",
                        _place(display, key_node.start_mark),
                    )
                )
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                raise _Refused(
                    Problem(
                        "FW-E008",
                        f"key '{key}' appears twice in the same mapping",
                        _place(display, key_node.start_mark),
                        hint=f"first written at line {result.key_places[key].line}",
                    )
                )
            result.key_places[key] = _place(display, key_node.start_mark)
            result.value_places[key] = _place(display, value_node.start_mark)
            result[key] = _convert(value_node, display, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = LocatedList(place=_place(display, node.start_mark))
        for item in node.value:
            items.item_places.append(_place(display, item.start_mark))
            items.append(_convert(item, display, budget))
        return items
    return budget.scalar_value(node)


def _flatten_merge(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """Apply YAML ``<<`` merge keys: explicit keys win over merged ones."""
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    own: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    merged.extend(_flatten_merge(source))
        else:
            own.append((key_node, value_node))
    own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
    return [(k, v) for k, v in merged if getattr(k, "value", None) not in own_keys] + own


def read_text(path: Path, display: str) -> tuple[str | None, list[Problem]]:
    """The file's text as UTF-8, or the problems that stop it being read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem("FW-E001", f"cannot read file: {exc.strerror}", Place(display))]
    if len(raw) > MAX_FILE_BYTES:
        return None, [
            Problem(
                "FW-E001",
                f"file is {len(raw)} bytes; metadata files are limited to {MAX_FILE_BYTES}",
                Place(display),
                hint="split it into several files",
            )
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Problem(
                "FW-E002",
                f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                Place(display, line, column),
                hint="save the file as UTF-8",
            )
        ]
    return text, []


def parse_text(text: str, display: str, is_json: bool) -> tuple[Located | None, list[Problem]]:
    """Parse one file's text into located data, refusing anything that is not plain data."""
    if not text.strip():
        return None, [Problem("FW-E003", "file is empty", Place(display, 1, 1), hint="remove the file or give it a kind and a name")]
    if is_json:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return None, [Problem("FW-E004", f"malformed JSON: {exc.msg} (column {exc.colno})", Place(display, exc.lineno, exc.colno))]
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        column = mark.column + 1 if mark else 0
        message = exc.problem or exc.context or "malformed YAML"
        return None, [Problem("FW-E004", f"malformed YAML: {message} (column {column})", Place(display, line, column))]
    except yaml.YAMLError as exc:
        return None, [Problem("FW-E004", f"malformed YAML: {exc}", Place(display, 1, 1))]
    documents = [d for d in documents if d is not None]
    if not documents:
        return None, [Problem("FW-E003", "file holds no document", Place(display, 1, 1))]
    if len(documents) > 1:
        return None, [
            Problem(
                "FW-E009",
                f"file holds {len(documents)} documents; one object per file",
                _place(display, documents[1].start_mark),
                hint="move each '---' document into a file of its own",
            )
        ]
    try:
        data = _convert(documents[0], display, _Budget())
    except _Refused as refused:
        return None, [refused.problem]
    if not isinstance(data, Located):
        return None, [
            Problem(
                "FW-E010",
                "file must hold one mapping with 'kind' and 'name'",
                _place(display, documents[0].start_mark),
            )
        ]
    return data, []


def load_file(path: Path, display: str) -> tuple[SourceFile, list[Problem]]:
    """Read and parse one metadata file."""
    text, problems = read_text(path, display)
    if text is None:
        return SourceFile(path, display, None), problems
    data, problems = parse_text(text, display, path.suffix.lower() == ".json")
    return SourceFile(path, display, data, text), problems


def metadata_files(folder: Path) -> list[Path]:
    """Every metadata file under ``folder``, in a stable order; hidden folders are skipped."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in METADATA_SUFFIXES:
            found.append(path)
    return found
