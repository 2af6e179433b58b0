"""The example deployment at the repository root (华信贸易, a small trading company).

It must validate without a single problem and hold what docs/example-deployment.md
promises: the OA and purchase-sales-inventory entities, their forms, the approval
flows and the order workflow, the roles, the reports, the plugin hooks the metadata
names, and demo data that fits the metadata.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from formwork.metadata import validate_project
from formwork.metadata.loader import load_file
from formwork.metadata.model import App
from formwork.metadata.project import Project, load_project
from formwork.plugins import HookRegistry, PluginError, load_plugins

REPO = Path(__file__).resolve().parent.parent

MAIN_ENTITIES = (
    "purchase_request",
    "purchase_order",
    "vendor",
    "sales_order",
    "customer",
    "product",
    "stock_movement",
    "expense_claim",
    "leave_request",
    "contract",
)
CHILD_ENTITIES = ("purchase_request_line", "purchase_order_line", "sales_order_line", "expense_claim_line")
ROLES = (
    "employee",
    "manager",
    "finance",
    "warehouse",
    "purchasing",
    "sales",
    "sales_manager",
    "ceo",
    "admin",
)
REPORTS = ("spend_by_department", "stock_below_threshold", "sales_by_month", "approval_cycle_time")


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(REPO)


@pytest.fixture(scope="module")
def app(project: Project) -> App:
    compiled, problems = validate_project(project)
    assert not problems, "\n".join(p.format() for p in problems)
    assert compiled is not None
    return compiled


@pytest.fixture(scope="module")
def hooks(project: Project) -> HookRegistry:
    return load_plugins(project.plugin_dirs, project.display, entry_points=False)


def ctx(old: dict | None = None) -> SimpleNamespace:
    """The context a hook receives (see plugins/purchasing.py)."""
    return SimpleNamespace(user={"id": 1, "username": "admin"}, app=None, channel="api", old=old)


def run_hook(hooks: HookRegistry, name: str, record: dict, old: dict | None = None) -> Any:
    function = hooks.get(name)
    assert function is not None, f"hook {name} is not registered"
    return function(record, ctx(old))


# --- metadata -----------------------------------------------------------------


def test_the_example_validates_without_problems(project: Project) -> None:
    compiled, problems = validate_project(project)
    assert [p.format() for p in problems] == []
    assert compiled is not None and compiled.name == "trading_demo"


def test_the_validation_of_a_copy_is_self_contained(example_project: Path) -> None:
    compiled, problems = validate_project(load_project(example_project))
    assert [p.format() for p in problems] == []
    assert compiled is not None and set(MAIN_ENTITIES) <= set(compiled.entities)


def test_entities_of_oa_and_purchase_sales_inventory(app: App) -> None:
    assert set(MAIN_ENTITIES) | set(CHILD_ENTITIES) | {"user", "department"} == set(app.entities)
    for name in CHILD_ENTITIES:
        assert app.entities[name].is_child, name
    numbers = {name: app.entities[name].number.pattern for name in MAIN_ENTITIES if app.entities[name].number}
    assert numbers["purchase_request"] == "PR-{YYYY}-{#####}"
    assert set(numbers) == {
        "purchase_request",
        "purchase_order",
        "sales_order",
        "stock_movement",
        "expense_claim",
        "leave_request",
        "contract",
    }
    assert app.entities["product"].title_field == "sku" and app.entities["product"].fields["sku"].unique


def test_built_in_user_and_department_are_extended(app: App) -> None:
    user, department = app.entities["user"], app.entities["department"]
    assert user.builtin and {"username", "manager", "employee_no", "phone", "position", "hire_date"} <= set(
        user.fields
    )
    assert user.fields["employee_no"].unique
    assert (
        department.builtin
        and department.tree
        and {"name", "parent", "manager", "cost_center"} <= set(department.fields)
    )


def test_purchase_request_fields_say_the_rules(app: App) -> None:
    fields = app.entities["purchase_request"].fields
    assert fields["department"].default == "$user.department" and fields["department"].default_is_expression
    assert fields["requested_on"].default == "today()" and fields["requested_on"].default_is_expression
    assert fields["lines"].type == "table" and fields["lines"].entity == "purchase_request_line"
    assert fields["total"].compute == "sum(lines.amount)"
    assert fields["justification"].required_if == "total > 10000"
    assert fields["needed_by"].check and fields["needed_by"].message
    assert all(f.label.get("en") and f.label.get("zh") for f in fields.values())
    line = app.entities["purchase_request_line"].fields
    assert line["product"].to == "product" and line["amount"].compute == "round(quantity * unit_price, 2)"
    assert app.entities["purchase_request"].hooks == {
        "before_validate": "purchasing.stamp_decision",
        "before_save": "purchasing.check_budget",
    }


def test_leave_request_checks_its_dates(app: App) -> None:
    leave = app.entities["leave_request"]
    assert leave.fields["end_date"].check == "end_date >= start_date"
    assert leave.fields["days"].compute_hook == "oa.leave_days"
    assert {o.value for o in leave.fields["leave_type"].options} >= {"annual", "sick", "personal"}
    assert ("employee", "start_date") in leave.unique_together


def test_every_main_entity_has_a_form_with_a_list(app: App) -> None:
    for name in MAIN_ENTITIES:
        form = app.form_for(name)
        assert form is not None, name
        assert form.layout and form.list.columns and form.list.search and form.list.sort, name
    justification = next(s for s in app.forms["purchase_request"].layout if s.name == "justification")
    assert justification.visible_if == "total > 10000" and "justification" in justification.fields


def test_purchase_approval_has_three_tiers(app: App) -> None:
    flow = app.approvals["purchase_approval"]
    assert flow.entity == "purchase_request"
    manager, finance, ceo = flow.steps
    assert (manager.name, manager.when, manager.approvers[0].kind) == ("manager", None, "manager_of")
    assert (finance.name, finance.when, finance.mode, finance.approvers[0].value) == (
        "finance",
        "total > 5000",
        "all",
        "finance",
    )
    assert (ceo.name, ceo.when, ceo.approvers[0].value) == ("ceo", "total > 100000", "ceo")
    assert (
        flow.cc
        and flow.remind_after is not None
        and flow.escalate_after is not None
        and flow.escalate_to is not None
    )


def test_oa_approvals(app: App) -> None:
    assert [s.name for s in app.approvals["expense_approval"].steps] == ["manager", "finance"]
    leave = app.approvals["leave_approval"]
    assert [(s.name, s.when) for s in leave.steps] == [("manager", None), ("department_head", "days > 3")]
    assert leave.steps[1].approvers[0].kind == "department_head"
    contract = app.approvals["contract_approval"]
    assert any(s.mode == "sequence" and len(s.approvers) == 2 for s in contract.steps)
    for flow in app.approvals.values():
        for step in flow.steps:
            for rule in step.approvers:
                assert rule.kind != "role" or rule.value in app.roles, (flow.name, step.name, rule.value)


def test_sales_orders_follow_the_order_lifecycle(app: App, hooks: HookRegistry) -> None:
    flow = app.workflows["order_lifecycle"]
    assert flow.entity == "sales_order" and flow.initial == "draft"
    assert set(flow.states) == {"draft", "confirmed", "shipped", "closed", "cancelled"}
    assert set(flow.final_states) == {"closed", "cancelled"}
    transitions = {t.name: t for t in flow.transitions}
    assert transitions["cancel"].comment == "required" and transitions["cancel"].roles == ("sales_manager",)
    assert set(transitions["cancel"].from_states) == {"draft", "confirmed"}
    assert transitions["ship"].hook == "inventory.ship_order" and transitions["ship"].roles == ("warehouse",)
    assert app.flow_for("sales_order") is flow


def test_roles_grant_rows_fields_and_actions(app: App) -> None:
    assert set(ROLES) == set(app.roles)
    rows = {grant.rows for role in app.roles.values() for grant in role.grants.values()}
    assert {"own", "department", "department_tree", "all", "department == $user.department"} <= rows
    assert app.roles["finance"].grants["expense_claim"].read_only
    assert "cost" in app.roles["warehouse"].grants["product"].hidden
    assert app.roles["sales_manager"].inherits == ("sales", "manager")
    assert "vendor_text" in app.roles["purchasing"].grants["purchase_order"].actions
    employee = app.roles["employee"].grants
    assert {"purchase_request", "expense_claim", "leave_request"} <= set(employee)
    assert all(
        employee[name].rows == "own" for name in ("purchase_request", "expense_claim", "leave_request")
    )


def test_reports(app: App) -> None:
    assert set(REPORTS) == set(app.reports)
    spend = app.reports["spend_by_department"]
    assert spend.source == "purchase_request" and spend.group_by[0] == "department.name"
    assert spend.measures["total"] == "sum(total)" and spend.chart is not None and spend.chart.type == "bar"
    assert spend.params["period"].type == "daterange" and spend.sort == ("-total",)
    cycle = app.reports["approval_cycle_time"]
    assert cycle.group_by == ("month(requested_on)", "status")
    assert cycle.measures == {
        "requests": "count()",
        "avg_days": "avg(approval_days)",
        "max_days": "max(approval_days)",
    }
    stock = app.reports["stock_below_threshold"]
    assert stock.source == "product" and "on_hand < reorder_level" in (stock.filter or "") and stock.columns
    assert app.reports["sales_by_month"].measures["revenue"] == "sum(total)"
    for report in app.reports.values():
        assert report.roles and set(report.roles) <= set(app.roles), report.name


def test_every_hook_the_metadata_names_is_registered(app: App, hooks: HookRegistry) -> None:
    named = set()
    for entity in app.entities.values():
        named |= set(entity.hooks.values()) | {a.hook for a in entity.actions.values()}
        for field in entity.fields.values():
            named |= set(field.validators) | ({field.compute_hook} if field.compute_hook else set())
    named |= {t.hook for flow in app.workflows.values() for t in flow.transitions if t.hook}
    assert named == hooks.names()
    assert hooks.problems == []


# --- plugins --------------------------------------------------------------------


def test_check_budget_refuses_a_request_over_its_category_limit(hooks: HookRegistry) -> None:
    over = {"category": "office", "total": Decimal("20000.01"), "lines": []}
    with pytest.raises(PluginError) as refused:
        run_hook(hooks, "purchasing.check_budget", over)
    assert refused.value.field == "total" and "20,000" in refused.value.message
    assert (
        run_hook(hooks, "purchasing.check_budget", {"category": "office", "total": Decimal("20000")}) is None
    )
    assert (
        run_hook(hooks, "purchasing.check_budget", {"category": "goods", "total": Decimal("900000")}) is None
    )


def test_check_budget_adds_up_the_lines_before_the_total_is_computed(hooks: HookRegistry) -> None:
    record = {"category": "services", "total": None, "lines": [{"quantity": 2, "unit_price": "40000.50"}]}
    with pytest.raises(PluginError) as refused:
        run_hook(hooks, "purchasing.check_budget", record)
    assert "80,001.00" in refused.value.message


def test_stamp_decision_dates_the_approval_outcome(hooks: HookRegistry) -> None:
    deciding = {"status": "approved", "decided_on": None}
    run_hook(hooks, "purchasing.stamp_decision", deciding, old={"status": "pending"})
    assert deciding["decided_on"] == dt.date.today()
    imported = {"status": "rejected", "decided_on": "2026-05-19"}
    run_hook(hooks, "purchasing.stamp_decision", imported, old=None)
    assert imported["decided_on"] == "2026-05-19"
    resubmitted = {"status": "pending", "decided_on": dt.date(2026, 5, 19)}
    run_hook(hooks, "purchasing.stamp_decision", resubmitted, old={"status": "rejected"})
    assert resubmitted["decided_on"] is None


def test_credit_code_validator_checks_the_check_character(hooks: HookRegistry) -> None:
    assert run_hook(hooks, "purchasing.check_credit_code", {"tax_id": "91330100799655058B"}) is None
    assert run_hook(hooks, "purchasing.check_credit_code", {"tax_id": None}) is None
    with pytest.raises(PluginError) as wrong:
        run_hook(hooks, "purchasing.check_credit_code", {"tax_id": "91330100799655058C"})
    assert wrong.value.field == "tax_id" and "should be B" in wrong.value.message
    with pytest.raises(PluginError) as short:
        run_hook(hooks, "purchasing.check_credit_code", {"tax_id": "9133010079965"})
    assert "18 characters" in short.value.message


def test_leave_days_counts_working_days(hooks: HookRegistry) -> None:
    # 2026-11-20 is a Friday: Friday to the next Tuesday holds 3 working days.
    assert run_hook(
        hooks, "oa.leave_days", {"start_date": "2026-11-20", "end_date": "2026-11-24"}
    ) == Decimal(3)
    assert run_hook(
        hooks, "oa.leave_days", {"start_date": dt.date(2026, 11, 21), "end_date": dt.date(2026, 11, 22)}
    ) == Decimal(0)
    assert run_hook(
        hooks, "oa.leave_days", {"start_date": "2026-11-02", "end_date": "2026-11-27"}
    ) == Decimal(20)
    assert run_hook(hooks, "oa.leave_days", {"start_date": "2026-11-24", "end_date": "2026-11-20"}) is None


def test_ship_order_needs_lines_address_and_waybill(hooks: HookRegistry) -> None:
    order = {
        "lines": [{"product": 1, "quantity": 2}],
        "shipping_address": "南京市秦淮区中山南路88号",
        "tracking_no": "",
    }
    with pytest.raises(PluginError) as refused:
        run_hook(hooks, "inventory.ship_order", order)
    assert refused.value.field == "tracking_no" and "shipped_on" not in order
    with pytest.raises(PluginError) as empty:
        run_hook(hooks, "inventory.ship_order", {**order, "lines": []})
    assert empty.value.field == "lines"
    order["tracking_no"] = "SF1402837461"
    run_hook(hooks, "inventory.ship_order", order)
    assert order["shipped_on"] == dt.date.today()


def test_order_text_action_returns_a_message(hooks: HookRegistry) -> None:
    result = run_hook(
        hooks,
        "purchasing.order_text",
        {
            "code": "PO-2026-00004",
            "order_date": "2026-07-15",
            "total": "179999.51",
            "lines": [{"product": 4, "quantity": 120, "unit_price": "1327.43"}],
        },
    )
    assert result["message"] == "Order text ready (1 lines)"
    assert "PO-2026-00004" in result["text"] and "179,999.51" in result["text"]
    with pytest.raises(PluginError):
        run_hook(hooks, "purchasing.order_text", {"code": "PO-2026-00005", "lines": []})


# --- demo data -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(project: Project) -> list[tuple[str, str, list[dict]]]:
    """(file name, entity, records) of every demo file, in loading order."""
    files = sorted(path for folder in project.demo_dirs for path in folder.glob("*.yaml"))
    loaded = []
    for path in files:
        source, problems = load_file(path, path.name)
        assert not problems, [p.format() for p in problems]
        assert source.data is not None and set(source.data) == {"entity", "records"}, path.name
        loaded.append((path.name, source.data["entity"], list(source.data["records"])))
    return loaded


def _title_key(app: App, entity: str) -> str:
    return {"user": "username", "department": "name"}.get(entity) or app.entities[entity].title_field or "id"


def _check_record(app: App, entity: str, record: dict, titles: dict[str, set], where: str) -> list[str]:
    """What is wrong with one demo record: unknown fields, bad options, links to nothing."""
    wrong = []
    fields = app.entities[entity].fields
    for name, value in record.items():
        if (entity == "user" and name in ("password", "roles")) or (
            name == "status" and app.entities[entity].has_status
        ):
            continue
        field = fields.get(name)
        if field is None:
            wrong.append(f"{where}: unknown field {name}")
        elif field.type == "choice" and value not in field.option_values:
            wrong.append(f"{where}: {name} {value!r} is not an option")
        elif field.type == "link" and value not in titles.get(field.to or "", set()):
            wrong.append(f"{where}: {name} {value!r} names no {field.to}")
        elif field.type == "table":
            for index, row in enumerate(value):
                wrong += _check_record(app, field.entity or "", row, titles, f"{where}.{name}[{index}]")
    for name, field in fields.items():
        if field.required and name not in record and field.default is None and not field.read_only:
            wrong.append(f"{where}: required {name} missing")
    return wrong


def test_demo_records_fit_the_metadata(app: App, demo: list[tuple[str, str, list[dict]]]) -> None:
    titles: dict[str, set] = {}
    for _, entity, records in demo:
        key = _title_key(app, entity)
        titles.setdefault(entity, set()).update(r[key] for r in records if key in r)
    wrong = []
    for file, entity, records in demo:
        assert entity in app.entities, file
        for index, record in enumerate(records):
            wrong += _check_record(app, entity, record, titles, f"{file}[{index}]")
    assert wrong == []


def test_demo_files_load_masters_before_the_documents_that_use_them(
    demo: list[tuple[str, str, list[dict]]],
) -> None:
    order = [entity for _, entity, _ in demo]
    assert order[:5] == ["department", "user", "product", "vendor", "customer"]
    assert {
        "purchase_request",
        "purchase_order",
        "sales_order",
        "stock_movement",
        "expense_claim",
        "leave_request",
        "contract",
    } <= set(order[5:])


def test_demo_users_cover_every_role_in_the_org_chart(
    app: App, demo: list[tuple[str, str, list[dict]]]
) -> None:
    users = {r["username"]: r for _, entity, records in demo if entity == "user" for r in records}
    assert users["admin"]["password"] == "admin" and users["admin"]["roles"] == ["admin"]
    holders: dict[str, list[str]] = {}
    for name, user in users.items():
        for role in user["roles"]:
            assert role in app.roles, (name, role)
            holders.setdefault(role, []).append(name)
    assert set(holders) == set(ROLES)
    assert len(holders["finance"]) >= 2, "finance countersigns with mode all"
    assert len(holders["ceo"]) == 1
    departments = {r["name"]: r for _, entity, records in demo if entity == "department" for r in records}
    assert all(d["manager"] in users for d in departments.values())
    assert sum(1 for d in departments.values() if "parent" not in d) == 1, "one root: a tree"


def _line_total(lines: list[dict]) -> Decimal:
    return sum(
        (Decimal(str(line["quantity"])) * Decimal(str(line["unit_price"])) for line in lines), Decimal(0)
    )


def test_demo_purchase_requests_span_the_approval_tiers_within_budget(
    hooks: HookRegistry, demo: list[tuple[str, str, list[dict]]]
) -> None:
    requests = [r for _, entity, records in demo if entity == "purchase_request" for r in records]
    assert len(requests) >= 15
    totals = [_line_total(r["lines"]) for r in requests]
    assert (
        any(t <= 5000 for t in totals)
        and any(5000 < t <= 100000 for t in totals)
        and any(t > 100000 for t in totals)
    )
    for request, total in zip(requests, totals, strict=True):
        run_hook(hooks, "purchasing.check_budget", {**request, "total": total})
        assert total <= 10000 or request.get("justification"), request["title"]
    assert {r.get("status", "draft") for r in requests} == {"draft", "approved", "rejected"}


def test_demo_products_include_some_to_reorder(demo: list[tuple[str, str, list[dict]]]) -> None:
    products = [r for _, entity, records in demo if entity == "product" for r in records]
    assert len(products) >= 10
    low = [
        p["sku"]
        for p in products
        if p.get("active", True) and Decimal(str(p["on_hand"])) < Decimal(str(p["reorder_level"]))
    ]
    assert 2 <= len(low) < len(products)
