"""The example deployment at the repository root (华信贸易, a small trading company).

It must validate without a single problem and hold what docs/example-deployment.md
promises: the OA and purchase-sales-inventory entities, their forms, the approval
flows and the order workflow, the roles, the reports, the plugin hooks the metadata
names, and demo data that fits the metadata. On SQLite and PostgreSQL, the plugins keep
their promises through RecordService, and the seeded demo company runs its approval
tiers and order lifecycle (FlowEngine) and shows each person their share (RolePolicy).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.metadata import validate_project
from formwork.metadata.loader import load_file
from formwork.metadata.model import App
from formwork.metadata.project import Project, load_project
from formwork.plugins import HookRegistry, PluginError, load_plugins
from formwork.records import Actor, HookContext, RecordInvalid, RecordQuery, RecordService
from formwork.security import RolePolicy, load_actor
from formwork.seeding import seed_demo
from formwork.storage import build_schema, make_engine, migrate
from formwork.workflow.actions import FlowEngine

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
    """The parts of a hook's context these hooks read (see plugins/purchasing.py)."""
    return SimpleNamespace(user=Actor.system(), app=None, channel="api", old=old)


def run_hook(hooks: HookRegistry, name: str, record: dict, old: dict | None = None) -> Any:
    function = hooks.get(name)
    assert function is not None, f"hook {name} is not registered"
    return function(record, ctx(old))


# --- metadata -----------------------------------------------------------------


def test_the_example_validates_without_problems(example_project: Path) -> None:
    # a copy in a fresh folder: the deployment refers to nothing outside itself
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
    assert {"own", "department", "department_tree", "all"} <= rows
    assert "contract_type == 'sales' or department == $user.department" in rows
    assert app.roles["finance"].grants["expense_claim"].read_only
    assert "cost" in app.roles["warehouse"].grants["product"].hidden
    assert app.roles["sales_manager"].inherits == ("sales", "manager")
    assert "vendor_text" in app.roles["purchasing"].grants["purchase_order"].actions
    employee = app.roles["employee"].grants
    mine = {name: employee[name].rows for name in ("purchase_request", "expense_claim", "leave_request")}
    assert mine == {
        "purchase_request": "requester == $user",
        "expense_claim": "claimant == $user",
        "leave_request": "employee == $user",
    }
    assert all(employee[name].rows_is_expression for name in mine)


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
        if name == "created_by":
            if value not in titles.get("user", set()):
                wrong.append(f"{where}: created_by {value!r} names no user")
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


# --- through the write path, on SQLite and PostgreSQL ------------------------------

SYSTEM = Actor.system()


@dataclass
class Company:
    """The example deployment migrated into an empty database, with its plugins."""

    app: App
    records: RecordService
    engine: sa.Engine

    def create(self, entity: str, values: dict, channel: str = "api") -> dict:
        return self.records.create(entity, values, SYSTEM, channel)

    def get(self, entity: str, record_id: int) -> dict:
        return self.records.get(entity, record_id, SYSTEM)

    def count(self, entity: str) -> int:
        return self.records.count(entity, SYSTEM, RecordQuery())

    def context(self, old: dict | None = None) -> HookContext:
        return HookContext(user=SYSTEM, app=self.app, channel="workflow", old=old, service=self.records)

    def staff(self) -> tuple[dict, dict]:
        """A department and a user in it, for the records that name their owner."""
        department = self.create("department", {"name": "财务部", "code": "FIN"}, "seed")
        user = self.create(
            "user", {"username": "chen.jing", "full_name": "陈静", "department": department["id"]}, "seed"
        )
        return department, user


@pytest.fixture
def company(db_url: str, app: App, hooks: HookRegistry) -> Iterator[Company]:
    engine = make_engine(db_url)
    migrate(engine, app, allow_destructive=False)
    yield Company(app, RecordService(app, build_schema(app), engine, hooks=hooks), engine)
    engine.dispose()


def errors_of(refused: pytest.ExceptionInfo[RecordInvalid]) -> dict[str, str]:
    return {error.field: error.message for error in refused.value.errors}


def test_purchase_requests_keep_to_budget_and_date_their_approval(company: Company) -> None:
    department, user = company.staff()
    request = {
        "title": "会议室投影仪",
        "requester": user["id"],
        "department": department["id"],
        "category": "office",
        "justification": "旧投影仪损坏",
        "lines": [{"description": "投影仪", "quantity": 2, "unit_price": "12000"}],
    }
    with pytest.raises(RecordInvalid) as refused:
        company.create("purchase_request", request)
    assert "20,000 CNY" in errors_of(refused)["total"]
    assert company.count("purchase_request") == 0

    saved = company.create(
        "purchase_request",
        {**request, "lines": [{"description": "投影仪", "quantity": 2, "unit_price": "9000"}]},
    )
    assert saved["code"] == f"PR-{dt.date.today().year}-00001", "the refused save took no number"
    assert saved["total"] == Decimal("18000") and saved["lines"][0]["amount"] == Decimal("18000")
    assert saved["status"] == "draft" and saved["decided_on"] is None and saved["approval_days"] is None

    with pytest.raises(RecordInvalid) as unjustified:
        company.create(
            "purchase_request",
            {
                **request,
                "justification": None,
                "lines": [{"description": "投影仪", "quantity": 1, "unit_price": "10001"}],
            },
        )
    assert "justification" in errors_of(unjustified)
    assert company.count("purchase_request") == 1

    toner = company.create(
        "purchase_request",
        {
            "title": "硒鼓",
            "requester": user["id"],
            "department": department["id"],
            "requested_on": "2026-01-05",
            "lines": [{"description": "硒鼓", "quantity": 2, "unit_price": "420"}],
        },
    )
    approved = company.records.update(
        "purchase_request", toner["id"], {"status": "approved"}, SYSTEM, "workflow", version=toner["version"]
    )
    assert approved["decided_on"] == dt.date.today()
    assert approved["approval_days"] == (dt.date.today() - dt.date(2026, 1, 5)).days


def test_stock_on_hand_follows_the_stock_movements(company: Company) -> None:
    product = company.create(
        "product", {"sku": "OF-TONER-88A", "name": "硒鼓 HP 88A", "category": "office", "price": "420"}
    )
    assert product["on_hand"] == Decimal("0")
    received = company.create(
        "stock_movement",
        {
            "product": product["id"],
            "direction": "in",
            "quantity": 10,
            "reason": "purchase",
            "reference": "LX-01",
        },
    )
    issued = company.create(
        "stock_movement",
        {"product": product["id"], "direction": "out", "quantity": 4, "reason": "sale", "reference": "SF1"},
    )
    assert issued["signed_quantity"] == Decimal("-4")
    assert company.get("product", product["id"])["on_hand"] == Decimal("6")

    with pytest.raises(RecordInvalid) as short:
        company.create(
            "stock_movement",
            {
                "product": product["id"],
                "direction": "out",
                "quantity": 7,
                "reason": "sale",
                "reference": "SF2",
            },
        )
    assert "Only 6.00 of OF-TONER-88A on hand" in errors_of(short)["quantity"]
    assert company.count("stock_movement") == 2 and company.get("product", product["id"])[
        "on_hand"
    ] == Decimal("6")

    company.records.update(
        "stock_movement", received["id"], {"quantity": 12}, SYSTEM, "api", version=received["version"]
    )
    assert company.get("product", product["id"])["on_hand"] == Decimal("8")
    company.records.delete("stock_movement", issued["id"], SYSTEM, "api")
    assert company.get("product", product["id"])["on_hand"] == Decimal("12")

    current = company.get("product", product["id"])
    with pytest.raises(RecordInvalid) as typed_in:
        company.records.update(
            "product", product["id"], {"on_hand": 99}, SYSTEM, "api", version=current["version"]
        )
    assert "on_hand" in errors_of(typed_in)
    assert company.get("product", product["id"])["on_hand"] == Decimal("12")


def test_shipping_an_order_issues_its_goods_or_nothing(company: Company, hooks: HookRegistry) -> None:
    ship = hooks.get("inventory.ship_order")
    assert ship is not None
    _, user = company.staff()
    customer = company.create("customer", {"name": "南京金陵商贸有限公司"})
    product = company.create(
        "product", {"sku": "EL-MON-27", "name": "27英寸显示器", "category": "electronics", "price": "1899"}
    )
    company.create(
        "stock_movement",
        {
            "product": product["id"],
            "direction": "in",
            "quantity": 5,
            "reason": "purchase",
            "reference": "DX-1",
        },
    )

    def order(quantity: int, tracking_no: str | None) -> dict:
        return company.create(
            "sales_order",
            {
                "customer": customer["id"],
                "sales_rep": user["id"],
                "department": user["department"],
                "shipping_address": "南京市秦淮区中山南路88号",
                "tracking_no": tracking_no,
                "lines": [{"product": product["id"], "quantity": quantity, "unit_price": "1899"}],
            },
        )

    unlabelled = order(1, None)
    with pytest.raises(PluginError) as no_waybill:
        ship(unlabelled, company.context(old=unlabelled))
    assert no_waybill.value.field == "tracking_no"

    first = order(3, "SF1402837461")
    with company.records.transaction():
        ship(first, company.context(old=first))
    assert first["shipped_on"] == dt.date.today()
    assert company.get("product", product["id"])["on_hand"] == Decimal("2")
    issued = company.records.list("stock_movement", SYSTEM, RecordQuery(filters={"direction": "out"}))
    assert [(m["reference"], m["quantity"], m["reason"]) for m in issued] == [
        (first["code"], Decimal("3"), "sale")
    ]

    second = order(3, "SF1402837462")
    with pytest.raises(RecordInvalid) as short, company.records.transaction():
        ship(second, company.context(old=second))
    assert "Only 2.00 of EL-MON-27 on hand" in errors_of(short)["quantity"]
    assert company.count("stock_movement") == 2 and company.get("product", product["id"])[
        "on_hand"
    ] == Decimal("2")


def test_leave_days_are_working_days_and_the_dates_are_checked(company: Company) -> None:
    department, user = company.staff()
    leave = {"employee": user["id"], "department": department["id"], "leave_type": "annual"}
    saved = company.create("leave_request", {**leave, "start_date": "2026-11-20", "end_date": "2026-11-24"})
    assert saved["days"] == Decimal("3") and saved["code"].startswith("LV-")

    with pytest.raises(RecordInvalid) as backwards:
        company.create("leave_request", {**leave, "start_date": "2026-12-24", "end_date": "2026-12-21"})
    assert (
        errors_of(backwards)["end_date"] == "The leave cannot end before it starts / 结束日期不能早于开始日期"
    )
    with pytest.raises(RecordInvalid) as weekend:
        company.create("leave_request", {**leave, "start_date": "2026-11-28", "end_date": "2026-11-29"})
    assert "no working day" in errors_of(weekend)["days"]
    with pytest.raises(RecordInvalid) as twice:
        company.create("leave_request", {**leave, "start_date": "2026-11-20", "end_date": "2026-11-20"})
    assert twice.value.errors, "one request per person and start day"
    assert company.count("leave_request") == 1


def test_vendors_are_checked_and_get_their_order_as_text(company: Company, hooks: HookRegistry) -> None:
    with pytest.raises(RecordInvalid) as refused:
        company.create("vendor", {"name": "苏州鼎新电子科技有限公司", "tax_id": "91320583MA1N4P6Q8A"})
    assert "should be U" in errors_of(refused)["tax_id"]
    assert company.count("vendor") == 0
    vendor = company.create("vendor", {"name": "苏州鼎新电子科技有限公司", "tax_id": "91320583MA1N4P6Q8U"})
    _, user = company.staff()
    product = company.create(
        "product", {"sku": "EL-MON-27", "name": "27英寸显示器", "category": "electronics", "price": "1899"}
    )
    purchase = company.create(
        "purchase_order",
        {
            "vendor": vendor["id"],
            "buyer": user["id"],
            "order_date": "2026-07-15",
            "expected_on": "2026-07-24",
            "lines": [{"product": product["id"], "quantity": 120, "unit_price": "1327.43"}],
        },
    )
    action = hooks.get(company.app.entities["purchase_order"].actions["vendor_text"].hook)
    assert action is not None
    result = action(purchase, company.context(old=purchase))
    assert result["message"] == "Order text ready (1 lines)"
    assert result["text"].splitlines() == [
        "苏州鼎新电子科技有限公司:",
        f"Purchase order {purchase['code']} (2026-07-15)",
        "1. EL-MON-27 27英寸显示器: 120.00 pcs x 1,327.43",
        "Total incl. VAT: 179,999.51 CNY",
        "Please deliver by 2026-07-24.",
    ]


class Demo:
    """The seeded demo company with its flow engine; people act under their own roles."""

    def __init__(self, company: Company, project: Project) -> None:
        self.company = company
        self.records = company.records
        self.report = seed_demo(project, company.records)
        self.flows = FlowEngine(company.records)
        app, schema = company.app, company.records.schema
        self.secured = RecordService(
            app,
            schema,
            company.engine,
            company.records.hooks,
            policy=RolePolicy(app, schema.tables, company.engine),
        )

    def user_id(self, username: str) -> int:
        return self.records.list("user", SYSTEM, RecordQuery(filters={"username": username}))[0]["id"]

    def actor(self, username: str) -> Actor:
        with self.company.engine.connect() as conn:
            found = load_actor(conn, self.company.app, self.records.schema, self.user_id(username))
        assert found is not None
        return found

    def create(self, username: str, entity: str, values: dict) -> dict:
        return self.records.create(entity, values, self.actor(username), "api")

    def act(
        self, username: str, entity: str, record: dict, action: str, comment: str | None = None
    ) -> str | None:
        return self.flows.act(entity, record["id"], action, self.actor(username), comment=comment).status

    def approvals(self, entity: str, record: dict) -> list[tuple[str | None, str | None]]:
        """(step, user) of every approval on the record's timeline, in order."""
        return [
            (e["step"], e["user"])
            for e in self.flows.timeline(entity, record["id"])
            if e["action"] == "approve"
        ]

    def visible(self, username: str, entity: str, key: str) -> list[Any]:
        """``key`` of the records of ``entity`` that ``username``'s roles let them see, by id."""
        rows = self.secured.list(entity, self.actor(username), RecordQuery(sort=("id",)))
        return [row.get(key) for row in rows]

    def on_hand(self, sku: str) -> Decimal:
        return self.records.list("product", SYSTEM, RecordQuery(filters={"sku": sku}))[0]["on_hand"]


def test_the_seeded_demo_company_has_history_and_runs_its_flows(company: Company, project: Project) -> None:
    demo = Demo(company, project)
    assert demo.report.created["purchase_request"] == 16 and demo.report.created["user"] == 20
    products = demo.records.list("product", SYSTEM, RecordQuery(sort=("sku",)))
    low = [p["sku"] for p in products if p["active"] and p["on_hand"] < p["reorder_level"]]
    assert low == ["EL-LAP-T14", "FU-DESK-140", "OF-PEN-BK", "OF-TONER-88A", "PK-TAPE-48"]
    requests = demo.records.list("purchase_request", SYSTEM, RecordQuery(sort=("id",)))
    assert {r["status"] for r in requests} == {"approved", "rejected", "draft"}
    decided = [r for r in requests if r["status"] != "draft"]
    assert all(r["approval_days"] == (r["decided_on"] - r["requested_on"]).days for r in decided)
    assert max(r["total"] for r in requests) == Decimal("204000")
    managers = {d["name"]: d["manager"] for d in demo.records.list("department", SYSTEM, RecordQuery())}
    assert managers["财务部"] == demo.user_id("liu.fang")

    # Purchase requests climb the approval tiers: manager, finance countersign, CEO.
    finance = [("finance", "liu.fang"), ("finance", "chen.jing"), ("finance", "zhao.min")]
    tiers = [
        ("yang.yang", "office", "OF-A4-80", 100, "25", [("manager", "xu.ting")]),
        ("huang.lei", "goods", "FU-CHAIR-ERG", 50, "900", [("manager", "wu.hao"), *finance]),
        (
            "sun.li",
            "goods",
            "EL-LAP-T14",
            30,
            "6800",
            [("manager", "zhou.qiang"), *finance, ("ceo", "wang.jianguo")],
        ),
    ]
    for requester, category, sku, quantity, price, approvers in tiers:
        product = demo.records.list("product", SYSTEM, RecordQuery(filters={"sku": sku}))[0]
        request = demo.create(
            requester,
            "purchase_request",
            {
                "title": f"{sku} x {quantity}",
                "category": category,
                "justification": "demo",
                "lines": [{"product": product["id"], "quantity": quantity, "unit_price": price}],
            },
        )
        assert request["department"] == demo.actor(requester).department_id, (
            "department defaults to the user's"
        )
        assert demo.act(requester, "purchase_request", request, "submit") == "pending"
        for _, approver in approvers:
            demo.act(approver, "purchase_request", request, "approve")
        decided = demo.records.get("purchase_request", request["id"], SYSTEM)
        assert (decided["status"], demo.approvals("purchase_request", request)) == ("approved", approvers)
        assert decided["decided_on"] == dt.date.today() and decided["approval_days"] == 0

    # Leave: the team lead, and the department head too above 3 days.
    for start, end, approvers in [
        ("2027-01-04", "2027-01-08", [("manager", "qian.bo"), ("department_head", "zheng.wei")]),
        ("2027-01-11", "2027-01-11", [("manager", "qian.bo")]),
    ]:
        leave = demo.create(
            "ma.chao", "leave_request", {"leave_type": "annual", "start_date": start, "end_date": end}
        )
        demo.act("ma.chao", "leave_request", leave, "submit")
        for _, approver in approvers:
            demo.act(approver, "leave_request", leave, "approve")
        assert demo.records.get("leave_request", leave["id"], SYSTEM)["status"] == "approved"
        assert demo.approvals("leave_request", leave) == approvers

    # The order lifecycle: the warehouse ships, the ship hook issues the goods.
    customer = demo.records.list("customer", SYSTEM, RecordQuery(filters={"code": "C004"}))[0]
    monitor = demo.records.list("product", SYSTEM, RecordQuery(filters={"sku": "EL-MON-27"}))[0]
    order = demo.create(
        "he.jun",
        "sales_order",
        {
            "customer": customer["id"],
            "shipping_address": customer["address"],
            "lines": [{"product": monitor["id"], "quantity": 4, "unit_price": "1899"}],
        },
    )
    assert order["status"] == "draft" and order["sales_rep"] == demo.user_id("he.jun")
    assert demo.act("he.jun", "sales_order", order, "confirm") == "confirmed"
    with pytest.raises(RecordInvalid) as no_waybill:
        demo.act("ma.chao", "sales_order", order, "ship")
    assert "tracking_no" in errors_of(no_waybill)
    before = demo.on_hand("EL-MON-27")
    order = demo.records.get("sales_order", order["id"], SYSTEM)
    assert order["status"] == "confirmed" and order["shipped_on"] is None
    demo.records.update(
        "sales_order", order["id"], {"tracking_no": "SF1500000001"}, SYSTEM, "api", version=order["version"]
    )
    assert demo.act("ma.chao", "sales_order", order, "ship") == "shipped"
    shipped = demo.records.get("sales_order", order["id"], SYSTEM)
    assert shipped["shipped_on"] == dt.date.today()
    assert demo.on_hand("EL-MON-27") == before - 4
    issued = demo.records.list("stock_movement", SYSTEM, RecordQuery(filters={"reference": order["code"]}))
    assert [(m["direction"], m["quantity"]) for m in issued] == [("out", Decimal("4"))]


def test_roles_show_each_person_their_share_of_the_demo(company: Company, project: Project) -> None:
    demo = Demo(company, project)
    # employee: the requests that name them
    assert demo.visible("yang.yang", "purchase_request", "title") == [
        "第一季度办公用品采购",
        "新办公区人体工学椅",
        "办公用品补货 - 中性笔",
    ]
    assert demo.visible("emily.carter", "contract", "title") == ["Pacific Rim 2027 distribution agreement"]
    # roles add up: a buyer sees approved requests, a manager their department tree's
    approved = {
        r["code"]
        for r in demo.records.list("purchase_request", SYSTEM, RecordQuery())
        if r["status"] == "approved"
    }
    purchasing_department = {"PR-2026-00004", "PR-2026-00008"}
    assert set(demo.visible("zhou.qiang", "purchase_request", "code")) == {
        c for c in approved | purchasing_department
    }
    assert demo.visible("sun.li", "purchase_request", "status").count("draft") == 0
    # department_tree: the head of sales sees both sales groups' orders; a rep only theirs
    assert len(demo.visible("li.na", "sales_order", "code")) == 12
    assert (
        demo.visible("he.jun", "sales_order", "customer")
        == [demo.records.list("customer", SYSTEM, RecordQuery(filters={"code": "C003"}))[0]["id"]] * 2
    )
    # an expression on rows: the warehouse sees orders to ship or shipped, not drafts
    assert sorted(demo.visible("ma.chao", "sales_order", "status")) == ["confirmed", "shipped", "shipped"]
    # hidden fields: product cost for the warehouse, bank accounts for managers
    product = demo.secured.list("product", demo.actor("ma.chao"), RecordQuery(limit=1))[0]
    assert "cost" not in product and "on_hand" in product
    assert "cost" in demo.secured.list("product", demo.actor("liu.fang"), RecordQuery(limit=1))[0]
    assert demo.visible("xu.ting", "expense_claim", "bank_account") == [None]
    assert demo.visible("yang.yang", "expense_claim", "bank_account") == ["6222 0210 0198 7654 321"]
    assert len(demo.visible("chen.jing", "expense_claim", "code")) == 5
