"""Approver rules, conditions, the flow snapshot a record keeps (with the report of records
in flight and the step's field permissions), and plain workflows."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_deployment import Company

from formwork.workflow.errors import ActionConflict, ActionInvalid, ActionRefused
from formwork.workflow.fields import StepFields, step_fields
from formwork.workflow.versions import in_flight_report


def fields_of(company: Company, record: dict, entity: str = "purchase_request") -> StepFields:
    with company.engine.connect() as conn:
        return step_fields(conn, company.app, company.tables, entity, record["id"], company.status(record, entity))


RULES = """
    kind: approval
    name: purchase_approval
    entity: purchase_request
    skip_initiator: false
    skip_repeated: false
    steps:
      - {name: chain_levels, approvers: {manager_chain: {levels: 2}, of: requester}, mode: sequence}
      - {name: chain_until, approvers: {manager_chain: {until_role: ceo}, of: requester}, mode: sequence}
      - {name: chain_creator, approvers: {manager_chain: {levels: 1}}}
      - {name: head_by_field, approvers: {department_head: department}}
      - {name: head_by_name, approvers: {department_head: Finance}}
      - {name: user_field, approvers: {field: approver}}
      - {name: resolver, approvers: {plugin: test.auditors}}
      - {name: roles_and_users, approvers: [{role: manager}, {user: ivan}], mode: sequence}
    """


def test_approver_rules_resolve_to_active_people_in_order(tmp_path: Path, db_url: str) -> None:
    company = Company(tmp_path, db_url, RULES)
    request = company.create("eve", title="Pens", amount=50, approver=company.user_id("fay"))
    company.act("eve", request, "submit")
    seen: list[tuple[str, str]] = []
    while company.status(request) == "pending":
        current = [name for name in ("chen", "mary", "fiona", "fay", "otto", "fred", "ivan") if request["id"] in company.waiting(name)]
        assert len(current) == 1, current
        seen.append((company.flows.inbox(company.user_id(current[0]), "waiting")[0]["step"], current[0]))
        company.act(current[0], request, "approve")
    assert seen == [
        ("chain_levels", "mary"), ("chain_levels", "chen"),  # two levels up from eve
        ("chain_until", "mary"), ("chain_until", "chen"),  # up to the first holder of ceo
        ("chain_creator", "mary"),  # of: created_by by default
        ("head_by_field", "mary"), ("head_by_name", "fiona"), ("user_field", "fay"),
        ("resolver", "otto"),  # the plugin's unknown name is ignored
        # members of manager and of roles inheriting it (ceo), by user id; ivan is inactive
        ("roles_and_users", "chen"), ("roles_and_users", "mary"), ("roles_and_users", "fiona"),
    ]
    company.close()


def test_step_condition_reads_the_record_when_the_step_is_reached(tmp_path: Path, db_url: str) -> None:
    text = """
        kind: approval
        name: purchase_approval
        entity: purchase_request
        steps:
          - {name: manager, approvers: {manager_of: requester}}
          - {name: sales_finance, when: "department.code == 'SAL' and amount >= 1000", approvers: {user: fred}}
        """
    company = Company(tmp_path, db_url, text)
    small = company.create("eve", title="Pens", amount=50)
    large = company.create("eve", title="Desk", amount=1000)
    for request in (small, large):
        company.act("eve", request, "submit")
        company.act("mary", request, "approve")
    assert company.status(small) == "approved"
    assert company.status(large) == "pending" and company.waiting("fred") == [large["id"]]
    company.close()


def test_a_record_in_flight_keeps_the_flow_it_started_with(tmp_path: Path, db_url: str) -> None:
    first = """
        kind: approval
        name: purchase_approval
        entity: purchase_request
        steps:
          - {name: manager, approvers: {manager_of: requester}, editable: [amount], hidden: [approver]}
          - {name: finance, approvers: {user: fred}}
        """
    company = Company(tmp_path, db_url, first)
    old = company.create("eve", title="Pens", amount=50)
    draft_fields = fields_of(company, old)
    company.act("eve", old, "submit")
    assert not draft_fields.locked and fields_of(company, old) == StepFields(locked=True, editable=("amount",), hidden=("approver",))
    company.reload("""
        kind: approval
        name: purchase_approval
        entity: purchase_request
        steps:
          - {name: lead, approvers: {user: otto}}
        """)
    new = company.create("eve", title="Paper", amount=50)
    company.act("eve", new, "submit")
    assert company.waiting("otto") == [new["id"]]
    with company.engine.connect() as conn:
        report = in_flight_report(conn, company.app, company.tables)
    assert [(r.record_id, r.step, r.reason) for r in report] == [(old["id"], "manager", "step_removed")]
    assert "finishes on the steps it started with" in report[0].describe()
    assert fields_of(company, old).editable == ("amount",)  # the step of the version it started with
    company.act("mary", old, "approve")
    assert company.waiting("fred") == [old["id"]]
    company.act("fred", old, "approve")
    assert company.status(old) == "approved"
    company.close()


def test_plain_workflow_transitions(tmp_path: Path, db_url: str) -> None:
    company = Company(tmp_path, db_url)
    order = company.create("eve", "sales_order", code="SO-1", total=0)
    assert order["status"] == "draft"
    with pytest.raises(ActionRefused, match="only manager may confirm"):
        company.act("eve", order, "confirm", entity="sales_order")
    with pytest.raises(ActionConflict, match="condition 'total > 0'"):
        company.act("mary", order, "confirm", entity="sales_order")
    with pytest.raises(ActionConflict, match="the record is draft"):
        company.act("mary", order, "ship", entity="sales_order")
    with pytest.raises(ActionInvalid, match="comment is required to cancel"):
        company.act("mary", order, "cancel", entity="sales_order")
    assert company.counts()["fw_timeline"] == 0 and company.status(order, "sales_order") == "draft"
    assert fields_of(company, order, "sales_order") == StepFields(locked=False)
    company.records.update("sales_order", order["id"], {"total": 10}, company.actor("eve"), "api", order["version"])
    assert company.flows.state("sales_order", order["id"], company.actor("mary"))["actions"] == ["confirm", "cancel"]
    assert company.flows.state("sales_order", order["id"], company.actor("eve"))["actions"] == ["cancel"]
    assert company.act("mary", order, "confirm", entity="sales_order")["status"] == "confirmed"
    company.act("otto", order, "ship", entity="sales_order")
    shipped = company.get(order, "sales_order")
    assert shipped["status"] == "shipped" and str(shipped["shipped_on"]) == "2026-11-30"
    assert company.timeline(order, "sales_order") == [("confirm", "mary"), ("ship", "otto")]
    company.close()
