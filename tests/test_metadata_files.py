"""Files that cannot be read as metadata: each is reported with its place, and nothing compiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from metadata_project import problem_lines, validate, write_project

from formwork.metadata import compile_project, load_project
from formwork.problems import ProblemsFound

GOOD_ROLE = "kind: role\nname: clerk\n"


def only_problem(tmp_path: Path, files: dict[str, str | bytes]) -> str:
    write_project(tmp_path, {"metadata/good.yaml": GOOD_ROLE, **files})
    app, problems = validate(tmp_path)
    assert app is None
    assert len(problems) == 1, [p.format() for p in problems]
    return problems[0].format()


def test_malformed_yaml_reports_line_and_column(tmp_path: Path) -> None:
    text = "kind: entity\nname: x\nfields:\n  a: {type: string\n  b: string\n"
    assert only_problem(tmp_path, {"metadata/a.yaml": text}) == (
        "metadata/a.yaml:5: [FW-E004] malformed YAML: expected ',' or '}', but got ':' (column 4)"
    )


def test_malformed_json_reports_line_and_column(tmp_path: Path) -> None:
    text = '{"kind": "entity",\n "name": "x",\n "fields": {"a": "string",}\n}\n'
    assert only_problem(tmp_path, {"metadata/a.json": text}) == (
        "metadata/a.json:3: [FW-E004] malformed JSON: Expecting property name enclosed in double quotes (column 27)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "metadata/a.yaml:1: [FW-E003] file is empty — remove the file or give it a kind and a name"),
        ("# only a comment\n", "metadata/a.yaml:1: [FW-E003] file holds no document"),
    ],
)
def test_empty_file(tmp_path: Path, text: str, expected: str) -> None:
    assert only_problem(tmp_path, {"metadata/a.yaml": text}) == expected


def test_two_documents_in_one_file(tmp_path: Path) -> None:
    text = "kind: role\nname: a\n---\nkind: role\nname: b\n"
    assert only_problem(tmp_path, {"metadata/a.yaml": text}) == (
        "metadata/a.yaml:4: [FW-E009] file holds 2 documents; one object per file"
        " — move each '---' document into a file of its own"
    )


def test_non_utf8_bytes(tmp_path: Path) -> None:
    assert only_problem(tmp_path, {"metadata/a.yaml": b"kind: role\nname: a\nlabel: caf\xe9\n"}) == (
        "metadata/a.yaml:3: [FW-E002] file is not valid UTF-8 (byte 0xe9) — save the file as UTF-8"
    )


def test_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    lines = ["kind: role", "name: a", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(8):
        previous, current = chr(97 + level), chr(98 + level)
        lines.append(f"{current}: &{current} [" + ", ".join([f"*{previous}"] * 10) + "]")
    assert only_problem(tmp_path, {"metadata/a.yaml": "\n".join(lines) + "\n"}) == (
        "metadata/a.yaml:3: [FW-E005] file expands to more than 200000 nodes (aliases refused past this bound)"
        " — an alias bomb or a runaway file; write the data out instead of nesting aliases"
    )


def test_python_tag_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f"kind: role\nname: !!python/object/apply:os.system ['touch {marker}']\n"
    assert only_problem(tmp_path, {"metadata/a.yaml": text}) == (
        "metadata/a.yaml:2: [FW-E006] tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed in metadata"
        " — metadata is data only; code belongs in a plugin referred to by name"
    )
    assert not marker.exists()


def test_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert only_problem(tmp_path, {"metadata/a.yaml": "- a\n- b\n"}) == (
        "metadata/a.yaml:1: [FW-E010] file must hold one mapping with 'kind' and 'name'"
    )


def test_missing_kind_and_name(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/a.yaml": "label: Orders\n"})
    assert problem_lines(tmp_path) == [
        "metadata/a.yaml:1: [FW-E110] missing 'kind' — start the file with 'kind:'"
        " (one of: app, entity, form, workflow, approval, role, report)",
        "metadata/a.yaml:1: [FW-E112] missing 'name' — give the object a snake_case name, e.g. 'name: purchase_request'",
    ]


def test_unknown_kind_suggests_the_closest(tmp_path: Path) -> None:
    assert only_problem(tmp_path, {"metadata/a.yaml": "kind: formm\nname: x\n"}) == (
        "metadata/a.yaml:1: kind: [FW-E111] unknown kind 'formm' — did you mean 'form'?"
    )


def test_compile_project_raises_with_every_problem(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/a.yaml": "", "metadata/b.yaml": "kind: formm\nname: x\n"})
    with pytest.raises(ProblemsFound) as raised:
        compile_project(load_project(tmp_path, environ={}))
    assert [p.code for p in raised.value.problems] == ["FW-E003", "FW-E111"]
    assert str(raised.value).splitlines()[0].startswith("metadata/a.yaml:1: [FW-E003]")
