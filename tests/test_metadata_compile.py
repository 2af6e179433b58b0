"""A valid project compiles to the expected frozen App; the metadata hash is stable."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
from metadata_project import validate, write_project

from formwork.metadata import load_app
from formwork.metadata.model import ApproverRule, ChoiceOption, Duration, Grant, MenuGroup

PROJECT = {
    "metadata/app.yaml": """
        kind: app
        name: shop
        label: {en: Shop, zh: 商店}
        version: 2
        menu:
          - label: {en: Purchasing, zh: 采购}
            items: [purchase_request, spend_by_department]
    """,
    "metadata/purchasing/purchase_request.yaml": """
        # a comment the hash must not see
        kind: entity
        name: purchase_request
        label: {en: Purchase request, zh: 采购申请}
        title_field: title
        fields:
          code: {type: string, max_length: 20, unique: true}
          title: {type: string, max_length: 120, required: true}
          department: {type: link, to: department, required: true, default: $user.department}
          amount: {type: decimal, digits: [12, 2], min: 0, required: true}
          currency: {type: choice, options: [CNY, {value: USD, label: {en: US dollar}}], default: CNY}
          needed_by: {type: date, default: "=today()"}
          urgent: boolean
          lines: {type: table, entity: purchase_request_line}
          reason: {type: text, renamed_from: why}
        indexes: [[department, needed_by]]
        number: {field: code, pattern: "PR-{YYYY}-{#####}"}
        hooks: {before_save: purchasing.check_budget}
        actions:
          duplicate: {hook: purchasing.duplicate, label: Duplicate}
    """,
    "metadata/purchasing/purchase_request_line.json": json.dumps(
        {
            "kind": "entity",
            "name": "purchase_request_line",
            "fields": {"item": {"type": "string", "required": True}, "quantity": "integer", "price": "decimal"},
        }
    ),
    "metadata/purchasing/purchase_request_form.yaml": """
        kind: form
        name: purchase_request
        entity: purchase_request
        layout:
          - {section: {en: Request, zh: 申请}, columns: 2, fields: [code, title, department, amount, currency]}
          - {section: Lines, name: lines, fields: [lines]}
        list: {columns: [code, title, department.name, amount, status], filters: [status], search: [title], sort: [-created_at], page_size: 25}
    """,
    "metadata/purchasing/purchase_approval.yaml": """
        kind: approval
        name: purchase_approval
        entity: purchase_request
        steps:
          - {name: manager, approvers: {manager_of: created_by}}
          - {name: board, approvers: [{role: finance}, {manager_chain: {levels: 2}}], mode: all, pass_ratio: 0.5}
        cc: {role: admin}
        on_no_approver: {user: ceo}
        remind: {after: 24h, max: 3}
        escalate: {after: 3d, to: {manager_of: approver}}
    """,
    "metadata/roles/finance.yaml": """
        kind: role
        name: finance
        inherits: [employee]
        grants:
          purchase_request: {actions: [read, update, duplicate], rows: all, read_only: [amount]}
    """,
    "metadata/roles/employee.yaml": """
        kind: role
        name: employee
        grants:
          purchase_request: {actions: [create, read], rows: own}
    """,
    "metadata/reports/spend.yaml": """
        kind: report
        name: spend_by_department
        title: Spend by department
        source: purchase_request
        params: {period: {type: daterange, default: this_quarter}}
        group_by: [department.name]
        measures: {total: sum(amount), requests: count()}
        sort: [-total]
        chart: {type: bar, x: department.name, y: total}
        roles: [finance]
    """,
}
PLUGINS = {
    "purchasing.py": """
        from formwork.plugins import hook

        @hook("purchasing.check_budget")
        def check_budget(record, ctx):
            return None

        @hook("purchasing.duplicate")
        def duplicate(record, ctx):
            return None
    """
}


def test_a_valid_project_compiles_to_the_expected_app(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT, plugins=PLUGINS)
    app = load_app(tmp_path)
    assert (app.name, app.label, app.version) == ("shop", {"en": "Shop", "zh": "商店"}, "2")
    assert app.menu == (MenuGroup({"en": "Purchasing", "zh": "采购"}, ("purchase_request", "spend_by_department")),)
    assert sorted(app.entities) == ["department", "purchase_request", "purchase_request_line", "user"]

    request = app.entities["purchase_request"]
    assert (request.table, request.has_status, request.is_child, request.builtin) == ("purchase_request", True, False, False)
    assert list(request.fields) == ["code", "title", "department", "amount", "currency", "needed_by", "urgent", "lines", "reason", "status"]
    fields = request.fields
    assert (fields["department"].default, fields["department"].default_is_expression) == ("$user.department", True)
    assert (fields["needed_by"].default, fields["needed_by"].default_is_expression) == ("today()", True)
    assert (fields["currency"].default, fields["currency"].default_is_expression) == ("CNY", False)
    assert fields["currency"].options == (ChoiceOption("CNY", {"en": "CNY"}), ChoiceOption("USD", {"en": "US dollar"}))
    assert fields["amount"].digits == (12, 2) and fields["amount"].min == 0
    assert fields["urgent"].label == {"en": "Urgent"}
    assert fields["reason"].renamed_from == ("why",)
    assert fields["lines"].is_stored is False and fields["lines"].entity == "purchase_request_line"
    assert fields["status"].option_values == ("draft", "pending", "approved", "rejected", "withdrawn")
    assert (fields["status"].default, fields["status"].read_only) == ("draft", True)
    assert request.indexes == (("department", "needed_by"),)
    assert (request.number.field, request.number.pattern) == ("code", "PR-{YYYY}-{#####}")
    assert request.hooks == {"before_save": "purchasing.check_budget"}
    assert request.actions["duplicate"].hook == "purchasing.duplicate"
    assert fields["code"].place.file == "metadata/purchasing/purchase_request.yaml"

    line = app.entities["purchase_request_line"]
    assert line.is_child and not line.has_status
    assert fields_of(line) == {"item": "string", "quantity": "integer", "price": "decimal"}
    assert line.fields["price"].digits == (18, 2)
    department = app.entities["department"]
    assert (department.table, department.tree, department.builtin) == ("fw_department", True, True)
    assert app.entities["user"].fields["active"].default is True

    form = app.forms["purchase_request"]
    assert [(s.label, s.columns, s.name) for s in form.layout] == [({"en": "Request", "zh": "申请"}, 2, None), ({"en": "Lines"}, 1, "lines")]
    assert (form.list.columns[2], form.list.sort, form.list.page_size) == ("department.name", ("-created_at",), 25)
    assert app.form_for("purchase_request") is form

    approval = app.approvals["purchase_approval"]
    assert app.flow_for("purchase_request") is approval
    manager, board = approval.steps
    assert manager.approvers == (ApproverRule("manager_of", "created_by", place=manager.approvers[0].place),)
    assert (board.mode, board.pass_ratio) == ("all", 0.5)
    assert [(r.kind, r.value, r.levels) for r in board.approvers] == [("role", "finance", None), ("manager_chain", "created_by", 2)]
    assert [(r.kind, r.value) for r in approval.cc] == [("role", "admin")]
    assert approval.on_no_approver == "user:ceo"
    assert (approval.remind_after, approval.remind_every, approval.remind_max) == (Duration(86400, "24h"), Duration(86400, "24h"), 3)
    assert (approval.escalate_after, approval.escalate_to.kind, approval.escalate_to.value) == (Duration(259200, "3d"), "manager_of", "approver")

    assert sorted(app.roles) == ["admin", "employee", "finance"]
    finance = app.roles["finance"]
    assert finance.inherits == ("employee",)
    assert finance.grants["purchase_request"] == Grant(
        "purchase_request", ("read", "update", "duplicate"), "all", False, (), ("amount",), finance.grants["purchase_request"].place
    )
    assert app.roles["employee"].grants["purchase_request"].rows == "own"

    report = app.reports["spend_by_department"]
    assert report.label == {"en": "Spend by department"}
    assert (report.params["period"].type, report.params["period"].default) == ("daterange", "this_quarter")
    assert report.measures == {"total": "sum(amount)", "requests": "count()"}
    assert (report.chart.x, report.chart.y, report.sort, report.roles) == ("department.name", ("total",), ("-total",), ("finance",))
    assert len(app.metadata_hash) == 64


def test_the_app_is_frozen(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT, plugins=PLUGINS)
    app = load_app(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        app.name = "other"  # type: ignore[misc]


def fields_of(entity) -> dict[str, str]:
    return {name: field.type for name, field in entity.fields.items()}


def hash_of(root: Path) -> str:
    app, problems = validate(root)
    assert problems == []
    return app.metadata_hash


def test_hash_ignores_file_order_comments_layout_and_format(tmp_path: Path) -> None:
    first = hash_of(write_project(tmp_path / "a", PROJECT, plugins=PLUGINS))
    # Files moved to other folders and listed in another order, comments added, the form as JSON.
    moved = {
        "metadata/all/" + name.rsplit("/", 1)[-1]: text if name.endswith(".json") else "# reviewed\n" + textwrap.dedent(text)
        for name, text in reversed(PROJECT.items())
        if not name.endswith("_form.yaml")
    }
    moved["metadata/all/purchase_request_form.json"] = json.dumps(
        {
            "list": {"page_size": 25, "sort": ["-created_at"], "search": ["title"], "filters": ["status"], "columns": ["code", "title", "department.name", "amount", "status"]},
            "layout": [
                {"section": {"zh": "申请", "en": "Request"}, "columns": 2, "fields": ["code", "title", "department", "amount", "currency"]},
                {"section": "Lines", "name": "lines", "fields": ["lines"]},
            ],
            "entity": "purchase_request",
            "name": "purchase_request",
            "kind": "form",
        },
        indent=3,
    )
    second = hash_of(write_project(tmp_path / "b", moved, plugins=PLUGINS))
    assert first == second
    changed = dict(PROJECT)
    changed["metadata/roles/employee.yaml"] = changed["metadata/roles/employee.yaml"].replace("rows: own", "rows: department")
    assert hash_of(write_project(tmp_path / "c", changed, plugins=PLUGINS)) != first


def test_without_declared_locales_labels_may_use_any_locale(tmp_path: Path) -> None:
    write_project(tmp_path, {"metadata/role.yaml": "kind: role\nname: clerk\nlabel: {fr: Commis, zh: 职员}\n"})
    (tmp_path / "formwork.yaml").write_text("name: shop\n", "utf-8")
    app, problems = validate(tmp_path)
    assert problems == []
    assert app.roles["clerk"].label == {"fr": "Commis", "zh": "职员"}


def test_validation_never_touches_the_database(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT, plugins=PLUGINS)
    (tmp_path / "formwork.yaml").write_text(
        "name: shop\nlocales: [en, zh]\nmetadata: [metadata]\nplugins: [plugins]\ndatabase: sqlite:///instance/shop.db\n", "utf-8"
    )
    app, problems = validate(tmp_path)
    assert problems == [] and app is not None
    assert not (tmp_path / "instance").exists()


def test_hash_ignores_equivalent_spellings(tmp_path: Path) -> None:
    first = hash_of(write_project(tmp_path / "a", PROJECT, plugins=PLUGINS))
    spelled = dict(PROJECT)
    spelled["metadata/roles/employee.yaml"] = PROJECT["metadata/roles/employee.yaml"].replace(
        "name: employee", "name: employee\n        label: {en: Employee}"
    )
    spelled["metadata/roles/finance.yaml"] = PROJECT["metadata/roles/finance.yaml"].replace(", rows: all", "")
    spelled["metadata/purchasing/purchase_approval.yaml"] = PROJECT["metadata/purchasing/purchase_approval.yaml"].replace(
        "{name: manager, approvers: {manager_of: created_by}}", "{name: manager, mode: any, approvers: [{manager_of: created_by}]}"
    )
    assert all(spelled[name] != PROJECT[name] for name in (
        "metadata/roles/employee.yaml", "metadata/roles/finance.yaml", "metadata/purchasing/purchase_approval.yaml"
    ))
    assert hash_of(write_project(tmp_path / "b", spelled, plugins=PLUGINS)) == first
