"""Schema mistakes (unknown key, wrong type, missing key, bad value) in plain words at their place."""

from __future__ import annotations

from pathlib import Path

from jsonschema import Draft202012Validator
from metadata_project import problem_lines, write_project

from formwork.metadata.schema import load_schemas

ORDER = """
kind: entity
name: sales_order
fields:
  title: {type: string, max_length: 80}
  amount: {type: decimal, digits: [12, 2]}
"""


def test_unknown_key_suggests_the_known_one(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/order.yaml": ORDER + "  note: {type: text, requird: true}\n"})
    assert problem_lines(tmp_path) == [
        "metadata/order.yaml:6: fields.note.requird: [FW-E101] unknown key 'requird' — did you mean 'required'?"
    ]


def test_unknown_top_level_key_lists_the_keys_when_nothing_is_close(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/role.yaml": "kind: role\nname: clerk\nzzz: 1\n"})
    assert problem_lines(tmp_path) == [
        "metadata/role.yaml:3: zzz: [FW-E101] unknown key 'zzz' — known keys: kind, name, label, description, inherits, grants"
    ]


def test_wrong_type(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/order.yaml": ORDER + "  note: {type: string, max_length: long}\n"})
    assert problem_lines(tmp_path) == [
        "metadata/order.yaml:6: fields.note.max_length: [FW-E102] must be an integer, not 'long'"
    ]


def test_missing_required_key_is_reported_at_the_parent(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "metadata/order.yaml": ORDER,
            "metadata/flow.yaml": """
                kind: workflow
                name: order_flow
                entity: sales_order
                states: [draft, done]
                transitions:
                  - name: finish
                    from: draft
            """,
        },
    )
    assert problem_lines(tmp_path) == ["metadata/flow.yaml:6: transitions[0]: [FW-E103] missing required key 'to'"]


def test_value_not_among_the_allowed_ones(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/order.yaml": ORDER + "  due: {type: dat}\n"})
    assert problem_lines(tmp_path) == [
        "metadata/order.yaml:6: fields.due.type: [FW-E104] 'dat' must be one of: string, text, integer, decimal,"
        " boolean, date, datetime, choice, link, table, file, email, json — did you mean 'date'?"
    ]


def test_label_of_the_wrong_shape(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/role.yaml": "kind: role\nname: clerk\nlabel: [Clerk]\n"})
    assert problem_lines(tmp_path) == [
        "metadata/role.yaml:3: label: [FW-E107] must be a text or a map of locales such as {en: Amount, zh: 金额}, not a list"
    ]


def test_bad_duration(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "metadata/order.yaml": ORDER,
            "metadata/approval.yaml": """
                kind: approval
                name: order_approval
                entity: sales_order
                steps:
                  - {name: boss, approvers: {role: admin}}
                remind: {after: 2 days}
            """,
        },
    )
    assert problem_lines(tmp_path) == [
        "metadata/approval.yaml:6: remind.after: [FW-E106] '2 days' is not a duration such as 30m, 24h or 2d"
    ]


def test_every_mistake_in_every_file_in_one_call_sorted(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "metadata/b_order.yaml": ORDER + "  note: {type: text, requird: true}\n  qty: {type: integr}\n",
            "metadata/a_role.yaml": "kind: role\nname: clerk\ninherits: clerk_base\n",
            "metadata/c_form.yaml": "kind: form\nname: sales_order\nlist: {page_size: 0}\n",
            "metadata/c_broken.yaml": "kind: role\nname: [x\n",
        },
    )
    assert problem_lines(tmp_path) == [
        "metadata/a_role.yaml:3: inherits: [FW-E102] must be a list, not 'clerk_base'",
        "metadata/b_order.yaml:6: fields.note.requird: [FW-E101] unknown key 'requird' — did you mean 'required'?",
        "metadata/b_order.yaml:7: fields.qty.type: [FW-E104] 'integr' must be one of: string, text, integer,"
        " decimal, boolean, date, datetime, choice, link, table, file, email, json — did you mean 'integer'?",
        "metadata/c_broken.yaml:3: [FW-E004] malformed YAML: expected ',' or ']', but got '<stream end>' (column 1)",
        "metadata/c_form.yaml:3: list.page_size: [FW-E105] must be at least 1, not 0",
    ]


def test_the_shipped_schemas_are_valid_draft_2020_12() -> None:
    schemas = load_schemas()
    assert sorted(schemas) == ["app", "approval", "definitions", "entity", "form", "report", "role", "workflow"]
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)


def test_a_field_that_is_neither_a_type_name_nor_a_mapping(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/order.yaml": ORDER + "  quantity: 5\n"})
    assert problem_lines(tmp_path) == [
        "metadata/order.yaml:6: fields.quantity: [FW-E102] must be a type name such as string,"
        " or a mapping such as {type: decimal, digits: [12, 2]}, not 5"
    ]
