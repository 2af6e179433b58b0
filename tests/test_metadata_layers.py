"""Layers: a base product plus a customer overlay merge by key and by name; mistakes are reported."""

from __future__ import annotations

from pathlib import Path

from metadata_project import problem_lines, validate, write_project

LAYERS = ("base", "custom")
BASE = {
    "base/purchase_request.yaml": """
        kind: entity
        name: purchase_request
        title_field: title
        fields:
          title: {type: string, max_length: 80, required: true}
          amount: {type: decimal, digits: [12, 2]}
          fax: string
    """,
    "base/pr_approval.yaml": """
        kind: approval
        name: pr_approval
        entity: purchase_request
        steps:
          - {name: manager, approvers: {manager_of: created_by}}
          - {name: finance, when: "amount > 5000", approvers: {role: finance}}
    """,
    "base/finance.yaml": "kind: role\nname: finance\ngrants:\n  purchase_request: {actions: [read]}\n",
}


def test_overlay_adds_changes_removes_and_overrides_by_name(tmp_path: Path) -> None:
    overlay = {
        "custom/purchase_request.yaml": """
            kind: entity
            name: purchase_request
            fields:
              title: {max_length: 200}
              cost_center: {type: string, max_length: 20}
              fax: {$remove: true}
        """,
        "custom/pr_approval.yaml": """
            kind: approval
            name: pr_approval
            steps:
              - {name: finance, when: "amount > 20000", mode: all}
              - {name: ceo, approvers: {user: ceo}}
              - {name: legal, approvers: {role: finance}, $before: finance}
        """,
        "custom/user.yaml": "kind: entity\nname: user\nfields:\n  employee_no: {type: string, max_length: 12}\n",
    }
    write_project(tmp_path, {**BASE, **overlay}, layers=LAYERS)
    app, problems = validate(tmp_path)
    assert problems == []
    request = app.entities["purchase_request"]
    assert list(request.fields) == ["title", "amount", "cost_center", "status"]
    assert (request.fields["title"].max_length, request.fields["title"].required) == (200, True)
    assert request.fields["amount"].digits == (12, 2)
    steps = app.approvals["pr_approval"].steps
    assert [s.name for s in steps] == ["manager", "legal", "finance", "ceo"]
    finance = steps[2]
    assert (finance.when, finance.mode, [(r.kind, r.value) for r in finance.approvers]) == (
        "amount > 20000",
        "all",
        [("role", "finance")],
    )
    user = app.entities["user"]
    assert user.builtin and user.table == "fw_user"
    assert list(user.fields) == ["username", "full_name", "email", "department", "manager", "active", "employee_no"]


def test_replace_takes_the_overlay_item_instead_of_merging(tmp_path: Path) -> None:
    overlay = {
        "custom/purchase_request.yaml": """
            kind: entity
            name: purchase_request
            fields:
              amount: {$replace: true, type: integer, min: 0}
        """,
    }
    write_project(tmp_path, {**BASE, **overlay}, layers=LAYERS)
    app, problems = validate(tmp_path)
    assert problems == []
    amount = app.entities["purchase_request"].fields["amount"]
    assert (amount.type, amount.digits, amount.min) == ("integer", None, 0)


def test_a_whole_object_can_be_removed(tmp_path: Path) -> None:
    overlay = {"custom/pr_approval.yaml": "kind: approval\nname: pr_approval\n$remove: true\n"}
    write_project(tmp_path, {**BASE, **overlay}, layers=LAYERS)
    app, problems = validate(tmp_path)
    assert problems == []
    assert app.approvals == {}
    assert "status" not in app.entities["purchase_request"].fields


def test_removing_what_does_not_exist_is_a_dangling_override(tmp_path: Path) -> None:
    overlay = {
        "custom/purchase_request.yaml": """
            kind: entity
            name: purchase_request
            fields:
              faxx: {$remove: true}
        """,
        "custom/pr_approval.yaml": """
            kind: approval
            name: pr_approval
            steps:
              - {name: cfo, $remove: true}
              - {name: ceo, approvers: {user: ceo}, $after: board}
        """,
        "custom/old_report.yaml": "kind: report\nname: old_report\n$remove: true\n",
    }
    write_project(tmp_path, {**BASE, **overlay}, layers=LAYERS)
    hint = "an override can only remove or change something an earlier layer defines; check the name and the layer order in formwork.yaml"
    assert problem_lines(tmp_path) == [
        f"custom/old_report.yaml:3: [FW-E302] dangling override: report 'old_report' is removed but no earlier layer defines it — {hint}",
        f"custom/pr_approval.yaml:4: steps[0]: [FW-E302] dangling override: 'cfo' is removed but no earlier layer defines it — {hint}",
        "custom/pr_approval.yaml:5: steps[1].$after: [FW-E302] dangling override: '$after: board' names no item of the list — known: manager, finance",
        f"custom/purchase_request.yaml:4: fields.faxx: [FW-E302] dangling override: 'faxx' is removed but no earlier layer defines it — {hint}",
    ]


def test_remove_in_the_first_layer_has_nothing_to_remove(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/a.yaml": "kind: role\nname: clerk\ngrants:\n  user: {$remove: true}\n"})
    assert problem_lines(tmp_path) == [
        "metadata/a.yaml:4: grants.user: [FW-E302] dangling override: 'user' is removed but no earlier layer defines it"
        " — an override can only remove or change something an earlier layer defines; check the name and the layer order in formwork.yaml"
    ]


def test_same_object_twice_in_one_layer_is_a_conflict(tmp_path: Path) -> None:
    overlay = {
        "custom/a.yaml": "kind: role\nname: finance\nlabel: Finance\n",
        "custom/sub/b.yaml": "kind: role\nname: finance\nlabel: Accounting\n",
    }
    write_project(tmp_path, {**BASE, **overlay}, layers=LAYERS)
    assert problem_lines(tmp_path) == [
        "custom/sub/b.yaml:2: name: [FW-E301] role 'finance' is defined twice in the same layer: in custom/a.yaml:1 and here"
        " — keep one file per object in a layer; to change an object from another layer, put the override in a later layer"
    ]


def test_markers_must_be_true(tmp_path: Path) -> None:
    overlay = {"custom/purchase_request.yaml": "kind: entity\nname: purchase_request\nfields:\n  fax: {$remove: 1}\n"}
    write_project(tmp_path, {**BASE, **overlay}, layers=LAYERS)
    assert problem_lines(tmp_path) == [
        "custom/purchase_request.yaml:4: fields.fax.$remove: [FW-E303] '$remove' must be true, not 1 — write '$remove: true' or leave it out"
    ]


def test_built_ins_cannot_be_removed_or_retyped(tmp_path: Path) -> None:
    overlay = {
        "custom/department.yaml": "kind: entity\nname: department\n$remove: true\n",
        "custom/user.yaml": "kind: entity\nname: user\nfields:\n  username: {type: integer}\n",
    }
    write_project(tmp_path, {**BASE, **overlay}, layers=LAYERS)
    assert problem_lines(tmp_path) == [
        "custom/department.yaml:3: $remove: [FW-E304] built-in entity 'department' cannot be removed — leave it in place; hide it from menus and roles instead",
        "custom/user.yaml:4: fields.username: [FW-E236] built-in field 'username' of user must stay a string field",
    ]


def test_same_name_in_one_list_of_one_file(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            **BASE,
            "custom/pr_approval.yaml": """
                kind: approval
                name: pr_approval
                steps:
                  - {name: ceo, approvers: {user: ceo}}
                  - {name: ceo, approvers: {user: boss}}
            """,
        },
        layers=LAYERS,
    )
    assert problem_lines(tmp_path) == [
        "custom/pr_approval.yaml:5: steps[1].name: [FW-E204] 'ceo' appears twice in this list — first written at line 4"
    ]


def test_a_misspelt_marker_is_an_unknown_key_with_the_markers_as_hint(tmp_path: Path) -> None:
    overlay = {"custom/purchase_request.yaml": "kind: entity\nname: purchase_request\nfields:\n  fax: {$remov: true}\n"}
    write_project(tmp_path, {**BASE, **overlay}, layers=LAYERS)
    assert problem_lines(tmp_path) == [
        "custom/purchase_request.yaml:4: fields.fax.$remov: [FW-E101] unknown key '$remov' — did you mean '$remove'?"
    ]
