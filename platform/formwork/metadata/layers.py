"""Read the layer folders of a project and merge them into one object per (kind, name).

Rules (docs/metadata-reference.md, "Layers"):

- a later layer's object with the same (kind, name) merges into the earlier one;
- mappings merge by key; lists whose items all carry a ``name`` merge by name
  (new items are appended, or placed with ``$before``/``$after: <name>``);
  any other list, and any scalar, is replaced whole;
- ``$remove: true`` removes the inherited object, field, step, transition,
  grant...; removing something that does not exist is a dangling override;
- ``$replace: true`` replaces the inherited item instead of merging into it;
- two files of the SAME layer with the same (kind, name) are a conflict.

Shorthands are expanded per file before merging, so a base ``amount: decimal``
and an overlay ``amount: {max: 100}`` merge as two mappings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formwork.metadata.builtins import builtin_objects
from formwork.metadata.loader import Located, LocatedList, dotted, load_file, metadata_files
from formwork.metadata.schema import KINDS, OVERRIDE_MARKERS
from formwork.problems import Place, Problem, did_you_mean

REMOVE, REPLACE, BEFORE, AFTER = OVERRIDE_MARKERS

Key = tuple[str, str]


@dataclass
class LayerObject:
    """One object as read from one file of one layer."""

    kind: str
    name: str
    data: Located


def read_layer(folder: Path, display: Callable[[Path], str]) -> tuple[list[LayerObject], list[Problem]]:
    """Every object in one layer folder, with shorthands expanded and same-layer conflicts reported."""
    problems: list[Problem] = []
    objects: list[LayerObject] = []
    seen: dict[Key, LayerObject] = {}
    for path in metadata_files(folder) if folder.is_dir() else []:
        source, file_problems = load_file(path, display(path))
        problems.extend(file_problems)
        if source.data is None:
            continue
        found = _identify(source.data, problems)
        if found is None:
            continue
        kind, name = found
        _expand_shorthands(kind, source.data)
        problems.extend(_duplicate_names(source.data, []))
        earlier = seen.get((kind, name))
        if earlier is not None:
            problems.append(
                Problem(
                    "FW-E301",
                    f"{kind} '{name}' is defined twice in the same layer: in {earlier.data.place} and here",
                    source.data.place_of("name"),
                    "name",
                    "keep one file per object in a layer; to change an object from another layer, put the override in a later layer",
                )
            )
            continue
        layer_object = LayerObject(kind, name, source.data)
        seen[(kind, name)] = layer_object
        objects.append(layer_object)
    return objects, problems


def _identify(data: Located, problems: list[Problem]) -> Key | None:
    kind = data.get("kind")
    name = data.get("name")
    ok = True
    if "kind" not in data:
        problems.append(Problem("FW-E110", "missing 'kind'", data.place, "", f"start the file with 'kind:' (one of: {', '.join(KINDS)})"))
        ok = False
    elif not isinstance(kind, str) or kind not in KINDS:
        hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else None
        problems.append(Problem("FW-E111", f"unknown kind '{kind}'", data.value_place("kind"), "kind", hint or f"one of: {', '.join(KINDS)}"))
        ok = False
    if "name" not in data:
        problems.append(Problem("FW-E112", "missing 'name'", data.place, "", "give the object a snake_case name, e.g. 'name: purchase_request'"))
        ok = False
    elif not isinstance(name, str) or not name:
        problems.append(Problem("FW-E112", f"'name' must be a text, not {name!r}", data.value_place("name"), "name"))
        ok = False
    return (kind, name) if ok else None


def _synthetic(value: Any, key: str, place: Place) -> Located:
    located = Located({key: value}, place=place)
    located.key_places[key] = place
    located.value_places[key] = place
    return located


def _expand_shorthands(kind: str, data: Located) -> None:
    """``title: string`` -> ``{type: string}``; ``states: [draft]`` -> ``[{name: draft}]``;
    a single approver rule -> a list of one."""
    if kind == "entity" and isinstance(data.get("fields"), Located):
        fields = data["fields"]
        for name, spec in list(fields.items()):
            if isinstance(spec, str):
                fields[name] = _synthetic(spec, "type", fields.value_place(name))
    if kind == "workflow" and isinstance(data.get("states"), LocatedList):
        states = data["states"]
        for index, state in enumerate(states):
            if isinstance(state, str):
                states[index] = _synthetic(state, "name", states.place_of(index))
    if kind == "approval":
        _rule_list(data, "cc")
        steps = data.get("steps")
        for step in steps if isinstance(steps, list) else ():
            if isinstance(step, Located):
                _rule_list(step, "approvers")


def _rule_list(owner: Located, key: str) -> None:
    if isinstance(owner.get(key), Located):
        rules = LocatedList([owner[key]], place=owner[key].place)
        rules.item_places = [owner[key].place]
        owner[key] = rules


def _is_named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in value)
    )


def _duplicate_names(node: Any, path: list) -> list[Problem]:
    """Items of one named list (states, steps, transitions, sections) must have distinct names."""
    problems = []
    if isinstance(node, dict):
        for key, value in node.items():
            problems.extend(_duplicate_names(value, [*path, key]))
    elif isinstance(node, list):
        if _is_named_list(node):
            first: dict[str, int] = {}
            for index, item in enumerate(node):
                name = item["name"]
                if name in first:
                    where = node.place_of(first[name]) if isinstance(node, LocatedList) else None
                    problems.append(
                        Problem(
                            "FW-E204",
                            f"'{name}' appears twice in this list",
                            item.place_of("name") if isinstance(item, Located) else None,
                            dotted([*path, index, "name"]),
                            f"first written at line {where.line}" if where else None,
                        )
                    )
                else:
                    first[name] = index
        for index, item in enumerate(node):
            problems.extend(_duplicate_names(item, [*path, index]))
    return problems


class _Merger:
    """Merges overlay nodes into base nodes, collecting problems about markers."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def marker(self, node: Located, key: str, path: list) -> Any:
        value = node.get(key)
        if key in (REMOVE, REPLACE) and value is not True:
            self.problems.append(
                Problem("FW-E303", f"'{key}' must be true, not {value!r}", node.value_place(key), dotted([*path, key]), f"write '{key}: true' or leave it out")
            )
            return None
        return value

    def dangling(self, node: Located, path: list, what: str) -> None:
        self.problems.append(
            Problem(
                "FW-E302",
                f"dangling override: {what}",
                node.place_of(REMOVE) if REMOVE in node else node.place,
                dotted(path),
                "an override can only remove or change something an earlier layer defines; check the name and the layer order in formwork.yaml",
            )
        )

    def strip(self, node: Any, path: list) -> Any:
        """A copy of a node that has nothing to merge into, markers checked and dropped."""
        if isinstance(node, dict):
            result = Located(place=getattr(node, "place", None))
            for key, value in node.items():
                if key in OVERRIDE_MARKERS:
                    if key == REMOVE and self.marker(node, key, path):
                        self.dangling(node, path, f"'{path[-1] if path else 'object'}' is removed but no earlier layer defines it")
                    elif key == REPLACE:
                        self.marker(node, key, path)
                    continue
                result[key] = self.strip(value, [*path, key])
                _copy_places(node, key, result)
            return result
        if isinstance(node, list):
            items = LocatedList(place=getattr(node, "place", None))
            for index, item in enumerate(node):
                if isinstance(item, dict) and item.get(REMOVE) is True:
                    self.dangling(item, [*path, index], f"'{item.get('name', index)}' is removed but no earlier layer defines it")
                    continue
                items.append(self.strip(item, [*path, index]))
                items.item_places.append(node.place_of(index) if isinstance(node, LocatedList) else items.place)
            return items
        return node

    def merge(self, base: Any, over: Any, path: list) -> Any:
        if isinstance(over, dict) and REPLACE in over and self.marker(over, REPLACE, path):
            return self.strip(over, path)
        if isinstance(base, dict) and isinstance(over, dict):
            return self._merge_mappings(base, over, path)
        if _is_named_list(base) and _is_named_list(over):
            return self._merge_named(base, over, path)
        return self.strip(over, path)

    def _merge_mappings(self, base: Located, over: Located, path: list) -> Located:
        result = Located(place=base.place)
        for key, value in base.items():
            result[key] = value
            _copy_places(base, key, result)
        for key, value in over.items():
            if key in OVERRIDE_MARKERS:
                continue
            if isinstance(value, dict) and REMOVE in value:
                if self.marker(value, REMOVE, [*path, key]):
                    if key in result:
                        del result[key]
                    else:
                        self.dangling(value, [*path, key], f"'{key}' is removed but no earlier layer defines it")
                continue
            result[key] = self.merge(result[key], value, [*path, key]) if key in result else self.strip(value, [*path, key])
            _copy_places(over, key, result)
        return result

    def _merge_named(self, base: LocatedList, over: LocatedList, path: list) -> LocatedList:
        items = [(item["name"], item, base.place_of(i)) for i, item in enumerate(base)]
        for index, item in enumerate(over):
            name = item["name"]
            at = next((i for i, (n, _, _) in enumerate(items) if n == name), None)
            item_path = [*path, index]
            if REMOVE in item:
                if self.marker(item, REMOVE, item_path):
                    if at is None:
                        self.dangling(item, item_path, f"'{name}' is removed but no earlier layer defines it")
                    else:
                        del items[at]
                continue
            if at is not None:
                items[at] = (name, self.merge(items[at][1], _without(item, (BEFORE, AFTER)), item_path), over.place_of(index))
                continue
            new = (name, self.strip(_without(item, (BEFORE, AFTER)), item_path), over.place_of(index))
            anchor_key = BEFORE if BEFORE in item else AFTER if AFTER in item else None
            if anchor_key is None:
                items.append(new)
                continue
            anchor = item[anchor_key]
            position = next((i for i, (n, _, _) in enumerate(items) if n == anchor), None)
            if position is None:
                self.problems.append(
                    Problem(
                        "FW-E302",
                        f"dangling override: '{anchor_key}: {anchor}' names no item of the list",
                        item.place_of(anchor_key),
                        dotted([*item_path, anchor_key]),
                        f"known: {', '.join(n for n, _, _ in items)}",
                    )
                )
                items.append(new)
            else:
                items.insert(position if anchor_key == BEFORE else position + 1, new)
        result = LocatedList(place=base.place)
        for _, item, place in items:
            result.append(item)
            result.item_places.append(place)
        return result


def _without(node: Located, keys: tuple[str, ...]) -> Located:
    result = Located(place=node.place)
    for key, value in node.items():
        if key not in keys:
            result[key] = value
            _copy_places(node, key, result)
    return result


def _copy_places(source: Any, key: str, target: Located) -> None:
    if isinstance(source, Located):
        if key in source.key_places:
            target.key_places[key] = source.key_places[key]
        if key in source.value_places:
            target.value_places[key] = source.value_places[key]


def merge_layers(layers: list[list[LayerObject]]) -> tuple[dict[Key, Located], list[Problem]]:
    """Merge layers in order over the built-in objects; returns one object per (kind, name)."""
    merger = _Merger()
    merged: dict[Key, Located] = {(b["kind"], b["name"]): b for b in builtin_objects()}
    builtin_keys = set(merged)
    for layer in layers:
        for obj in layer:
            key = (obj.kind, obj.name)
            if REMOVE in obj.data:
                if merger.marker(obj.data, REMOVE, []):
                    if key in builtin_keys:
                        merger.problems.append(
                            Problem("FW-E304", f"built-in {obj.kind} '{obj.name}' cannot be removed", obj.data.place_of(REMOVE), REMOVE, "leave it in place; hide it from menus and roles instead")
                        )
                    elif key in merged:
                        del merged[key]
                    else:
                        merger.dangling(obj.data, [], f"{obj.kind} '{obj.name}' is removed but no earlier layer defines it")
                continue
            if key in merged:
                merged[key] = merger.merge(merged[key], obj.data, [])
            else:
                merged[key] = merger.strip(obj.data, [])
    return merged, merger.problems
