"""A record under review is locked, through the records API: only the current step's
``editable`` fields change, only by that step's approvers; its ``hidden`` fields are left
out for them; a pending record cannot be deleted; a workflow state with ``editable``
locks every other field. Refusals write nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from browser import served_page
from web_login import PASSWORD, token_for
from workflow_deployment import Company

from formwork.security.accounts import Accounts
from formwork.web import create_app

APPROVAL = """
    kind: approval
    name: purchase_approval
    entity: purchase_request
    steps:
      - {name: manager, approvers: {manager_of: requester}, editable: [amount], hidden: [approver]}
      - {name: finance, approvers: {role: finance}}
    """

EXTRA = {
    "metadata/staff.yaml": """
        kind: role
        name: staff
        grants:
          purchase_request: {actions: [create, read, update, delete], rows: own}
          sales_order: {actions: [create, read, update], rows: all}
        """,
    "metadata/manager.yaml": """
        kind: role
        name: manager
        grants:
          purchase_request: {actions: [read, update, delete], rows: department_tree}
          sales_order: {actions: [read, update], rows: all}
        """,
    "metadata/roles.yaml": """
        kind: role
        name: finance
        grants:
          purchase_request: {actions: [read, update], rows: all}
        """,
    "metadata/order_flow.yaml": """
        kind: workflow
        name: order_flow
        entity: sales_order
        states: [{name: draft}, {name: confirmed, editable: [shipped_on]}, {name: shipped}, {name: cancelled}]
        initial: draft
        transitions:
          - {name: confirm, from: draft, to: confirmed, roles: [manager]}
          - {name: ship, from: confirmed, to: shipped, hook: test.ship}
          - {name: cancel, from: [draft, confirmed], to: cancelled}
        """,
}


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[tuple[Company, flask.testing.FlaskClient]]:
    company = Company(tmp_path, db_url, APPROVAL, extra=EXTRA)
    accounts = Accounts(company.records)
    for username in ("eve", "otto"):
        accounts.grant(username, "staff")
    app = create_app(company.project, app_model=company.app, engine=company.engine, config={"TESTING": True})
    yield company, app.test_client()
    company.close()


class Caller:
    """One user of the records API."""

    def __init__(self, client: flask.testing.FlaskClient, username: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token_for(client.application.extensions['formwork'], username)}"}

    def get(self, record: dict[str, Any], entity: str = "purchase_request") -> flask.Response:
        return self.client.get(f"/api/v1/{entity}/{record['id']}", headers=self.headers)

    def patch(self, record: dict[str, Any], entity: str = "purchase_request", **values: Any) -> flask.Response:
        version = self.client.get(f"/api/v1/{entity}/{record['id']}", headers=self.headers).json["version"]
        return self.client.patch(f"/api/v1/{entity}/{record['id']}", json={**values, "version": version}, headers=self.headers)

    def delete(self, record: dict[str, Any]) -> flask.Response:
        return self.client.delete(f"/api/v1/purchase_request/{record['id']}", headers=self.headers)

    def act(self, record: dict[str, Any], action: str, entity: str = "purchase_request", **body: Any) -> flask.Response:
        return self.client.post(f"/api/v1/{entity}/{record['id']}/workflow/{action}", json=body, headers=self.headers)


def errors(response: flask.Response) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in response.json["errors"]]


def test_only_the_steps_editable_fields_change_and_only_by_its_approvers(served: tuple[Company, flask.testing.FlaskClient]) -> None:
    company, client = served
    eve, mary, fred = Caller(client, "eve"), Caller(client, "mary"), Caller(client, "fred")
    request = company.create("eve", title="Laptops", amount=2000, approver=company.user_id("otto"))
    assert eve.act(request, "submit").status_code == 200
    before = company.get(request)

    requester_edit = eve.patch(request, amount=1000)
    assert requester_edit.status_code == 422 and errors(requester_edit) == [("amount", "locked")]
    assert "only by the approvers of step 'manager'" in requester_edit.json["errors"][0]["message"]
    locked = mary.patch(request, title="Gaming laptops", amount=1500)
    assert locked.status_code == 422 and errors(locked) == [("title", "locked")]
    assert "cannot be changed at step 'manager'" in locked.json["errors"][0]["message"]
    not_yet = fred.patch(request, amount=1500)  # finance's turn has not come
    assert not_yet.status_code == 422 and errors(not_yet) == [("amount", "locked")]
    assert company.get(request) == before

    # a form sends every field back: values given unchanged are no change
    edited = mary.patch(request, title="Laptops", amount=1500)
    assert edited.status_code == 200, edited.json
    assert company.get(request)["amount"] == 1500 and company.status(request) == "pending"

    # the step's hidden field is left out for its approver, not for the requester
    assert "approver" not in mary.get(request).json and "approver" in eve.get(request).json
    listed = client.get("/api/v1/purchase_request", headers=mary.headers).json["items"]
    assert [("approver" in item) for item in listed] == [False]
    assert "approver" not in edited.json

    assert mary.act(request, "approve").status_code == 200  # on to finance: amount locked again
    moved_on = mary.patch(request, amount=1600)
    assert moved_on.status_code == 422 and errors(moved_on) == [("amount", "locked")]
    assert "approver" in mary.get(request).json
    assert errors(fred.patch(request, amount=1600)) == [("amount", "locked")]  # not editable at finance
    assert fred.act(request, "approve").json["status"] == "approved"
    assert eve.patch(request, title="Laptops, approved").status_code == 200  # usual rules again


@pytest.mark.parametrize("ending", ["reject", "withdraw", "return"])
def test_editing_works_again_once_the_review_ends(served: tuple[Company, flask.testing.FlaskClient], ending: str) -> None:
    company, client = served
    eve, mary = Caller(client, "eve"), Caller(client, "mary")
    request = company.create("eve", title="Chairs", amount=300)
    eve.act(request, "submit")
    assert errors(eve.patch(request, title="Desks")) == [("title", "locked")]
    ended = eve.act(request, ending) if ending == "withdraw" else mary.act(request, ending, comment="not now")
    assert ended.status_code == 200, ended.json
    assert eve.patch(request, title="Desks").status_code == 200
    assert company.get(request)["title"] == "Desks"


def test_a_pending_record_cannot_be_deleted(served: tuple[Company, flask.testing.FlaskClient]) -> None:
    company, client = served
    eve, mary = Caller(client, "eve"), Caller(client, "mary")
    request = company.create("eve", title="Desk", amount=300)
    eve.act(request, "submit")
    before = company.counts()
    for caller in (eve, mary):
        refused = caller.delete(request)
        assert refused.status_code == 422 and errors(refused) == [("", "locked")]
        assert "under review (step 'manager')" in refused.json["errors"][0]["message"]
    assert company.counts() == before and company.status(request) == "pending"
    eve.act(request, "withdraw")
    assert eve.delete(request).status_code == 204
    assert eve.get(request).status_code == 404


def test_a_workflow_state_with_editable_locks_every_other_field(served: tuple[Company, flask.testing.FlaskClient]) -> None:
    company, client = served
    eve, mary = Caller(client, "eve"), Caller(client, "mary")
    order = company.create("eve", "sales_order", code="SO-1", total=10)
    assert eve.patch(order, "sales_order", total=20).status_code == 200  # draft: no lock
    assert mary.act(order, "confirm", "sales_order").json["status"] == "confirmed"
    before = company.get(order, "sales_order")
    refused = eve.patch(order, "sales_order", total=30, code="SO-2")
    assert refused.status_code == 422 and sorted(errors(refused)) == [("code", "locked"), ("total", "locked")]
    assert "cannot be changed at state 'confirmed'" in refused.json["errors"][0]["message"]
    assert company.get(order, "sales_order") == before
    assert eve.patch(order, "sales_order", shipped_on="2026-12-01").status_code == 200
    assert mary.act(order, "ship", "sales_order").json["status"] == "shipped"  # the workflow's own write is not limited
    assert eve.patch(order, "sales_order", total=40).status_code == 200


@pytest.fixture
def browser(served: tuple[Company, flask.testing.FlaskClient]) -> Iterator[tuple[Any, str]]:
    with served_page(served[1].application) as opened:
        yield opened


@pytest.mark.browser
def test_the_edit_screen_shows_locked_fields_read_only(served: tuple[Company, flask.testing.FlaskClient], browser: tuple[Any, str]) -> None:
    company, client = served
    page, base = browser
    request = company.create("eve", title="Monitors", amount=800, approver=company.user_id("otto"))
    Caller(client, "eve").act(request, "submit")
    before = company.get(request)
    Accounts(company.records).set_password("mary", PASSWORD)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "mary")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/admin/purchase_request/edit/?id={request['id']}")
    assert page.locator("#title").is_disabled() and page.locator("#department").is_disabled()
    assert page.locator("#amount").is_enabled()
    assert page.locator("#approver").count() == 0  # hidden from the step's approver
    page.fill("#amount", "750")
    page.click("input[type=submit][value=Save]")
    page.wait_for_url(re.compile(r"/admin/purchase_request/(\?.*)?$"))
    saved = company.get(request)
    assert (saved["title"], saved["amount"], saved["status"]) == ("Monitors", 750, "pending")
    assert {k: v for k, v in saved.items() if k not in ("amount", "version", "updated_at", "updated_by")} == {
        k: v for k, v in before.items() if k not in ("amount", "version", "updated_at", "updated_by")
    }

    Caller(client, "mary").act(request, "approve")  # finance's step: nothing is editable for mary
    page.goto(f"{base}/admin/purchase_request/edit/?id={request['id']}")
    assert page.locator("#amount").is_disabled() and page.locator("#title").is_disabled()
