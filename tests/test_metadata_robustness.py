"""Whatever shape a value has, validation reports problems in the file and never raises."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from metadata_project import validate, write_project

from formwork.metadata.schema import kind_schema

VALID = {
    "entity": {
        "kind": "entity",
        "name": "ticket",
        "title_field": "title",
        "fields": {"title": "string", "owner": {"type": "link", "to": "user"}, "lines": {"type": "table", "entity": "ticket_line"}},
        "number": {"field": "title", "pattern": "T-{#####}"},
    },
    "form": {"kind": "form", "name": "ticket", "layout": [{"section": "Main", "fields": ["title"]}], "list": {"columns": ["title"]}},
    "workflow": {
        "kind": "workflow",
        "name": "ticket_flow",
        "entity": "ticket",
        "states": ["open", {"name": "closed", "final": True}],
        "transitions": [{"name": "close", "from": "open", "to": "closed", "roles": ["admin"]}],
    },
    "approval": {"kind": "approval", "name": "note_approval", "entity": "note", "steps": [{"name": "boss", "approvers": {"manager_of": "created_by"}}], "remind": {"after": "1d"}},
    "role": {"kind": "role", "name": "agent", "inherits": ["admin"], "grants": {"ticket": {"actions": ["read"], "rows": "owner == $user"}}},
    "report": {"kind": "report", "name": "tickets", "source": "ticket", "group_by": ["owner.full_name"], "measures": {"n": "count()"}, "chart": {"type": "bar", "x": "owner.full_name", "y": "n"}},
    "app": {"kind": "app", "name": "desk", "menu": [{"label": "Desk", "items": ["ticket"]}]},
}
SUPPORT = {
    "metadata/ticket_line.json": {"kind": "entity", "name": "ticket_line", "fields": {"text": "string"}},
    "metadata/note.json": {"kind": "entity", "name": "note", "fields": {"text": "text"}},
}
WRONG_VALUES = [None, [7], {"x": 7}, {"$remove": True}]


def write(root: Path, files: dict[str, dict]) -> None:
    write_project(root, {name: json.dumps(data) for name, data in files.items()})


def test_the_valid_objects_are_valid(tmp_path: Path) -> None:
    write(tmp_path, {**SUPPORT, **{f"metadata/{kind}.json": data for kind, data in VALID.items()}})
    assert validate(tmp_path)[1] == []


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_wrong_value_at_any_key_is_a_problem_not_a_crash(tmp_path: Path, kind: str) -> None:
    keys = [k for k in kind_schema(kind)["properties"] if k not in ("kind", "name")]
    for key in keys:
        for index, wrong in enumerate(WRONG_VALUES):
            broken = copy.deepcopy(VALID[kind])
            broken[key] = wrong
            others = {f"metadata/{k}.json": data for k, data in VALID.items() if k != kind}
            root = tmp_path / f"{key}_{index}"
            write(root, {**SUPPORT, **others, f"metadata/{kind}.json": broken})
            app, problems = validate(root)
            assert app is None, (key, wrong)
            assert any(p.place and p.place.file == f"metadata/{kind}.json" for p in problems), (key, wrong, problems)
