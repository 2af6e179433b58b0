"""The workflow HTTP API on a real Flask app: actions, 409 on a decided task, inbox boxes,
the timeline, statistics, and refused input that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from web_login import token_for
from workflow_deployment import Company

from formwork.security.accounts import Accounts
from formwork.web import create_app

# The deployment's roles with grants: the API enforces them (the flow decides who approves).
ROLES = {
    "metadata/staff.yaml": """
        kind: role
        name: staff
        grants:
          purchase_request: {actions: [create, read, update], rows: own}
        """,
    "metadata/manager.yaml": """
        kind: role
        name: manager
        grants:
          purchase_request: {actions: [read, report], rows: department_tree}
        """,
    "metadata/roles.yaml": """
        kind: role
        name: finance
        grants:
          purchase_request: {actions: [read, report], rows: all}
        """,
}


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[tuple[Company, flask.testing.FlaskClient]]:
    company = Company(tmp_path, db_url, extra=ROLES)
    accounts = Accounts(company.records)
    for username in ("eve", "otto"):
        accounts.grant(username, "staff")
    app = create_app(company.project, app_model=company.app, engine=company.engine, config={"TESTING": True})
    yield company, app.test_client()
    company.close()


def auth(client: flask.testing.FlaskClient, username: str) -> dict[str, str]:
    """The ``Authorization`` header of a personal token of ``username`` (made once per test)."""
    tokens = client.application.config.setdefault("test_tokens", {})
    if username not in tokens:
        tokens[username] = token_for(client.application.extensions["formwork"], username)
    return {"Authorization": f"Bearer {tokens[username]}"}


def post(client: flask.testing.FlaskClient, caller: str, record: dict, action: str, **body: object) -> flask.Response:
    return client.post(f"/api/v1/purchase_request/{record['id']}/workflow/{action}", json=body, headers=auth(client, caller))


def test_a_request_through_the_api(served: tuple[Company, flask.testing.FlaskClient]) -> None:
    company, client = served
    request = company.create("eve", title="Laptops", amount=20000)
    url = f"/api/v1/purchase_request/{request['id']}/workflow"
    assert client.get(url, headers=auth(client, "eve")).json["actions"] == ["submit"]
    assert client.get(url, headers=auth(client, "mary")).json["actions"] == []
    # otto may read his own requests only: eve's does not exist for him
    hidden = client.get(url, headers=auth(client, "otto"))
    assert (hidden.status_code, hidden.json["errors"][0]["code"]) == (404, "not_found")
    assert client.get(f"/api/v1/purchase_request/{request['id']}/timeline", headers=auth(client, "otto")).status_code == 404
    response = post(client, "eve", request, "submit", comment="for the new hires")
    shown = client.get(url, headers=auth(client, "mary")).json
    assert (shown["status"], shown["step"], shown["waiting_for"]) == ("pending", "manager", ["mary"])
    assert shown["actions"] == ["approve", "reject", "return", "transfer", "delegate", "add_approver", "comment", "cc"]
    assert client.get(url, headers=auth(client, "eve")).json["actions"] == ["withdraw", "urge", "comment", "cc"]
    assert response.status_code == 200 and response.json["status"] == "pending" and response.json["step"] == "manager"
    waiting = client.get("/api/v1/tasks?box=waiting", headers=auth(client, "mary")).json["items"]
    assert [(i["entity"], i["record_id"], i["title"]) for i in waiting] == [("purchase_request", request["id"], "Laptops")]
    assert post(client, "mary", request, "approve").status_code == 200
    assert post(client, "fred", request, "approve").json["status"] == "pending"
    assert post(client, "fay", request, "approve").json["status"] == "approved"
    timeline = client.get(f"/api/v1/purchase_request/{request['id']}/timeline", headers=auth(client, "eve")).json["items"]
    assert [(e["action"], e["user"]) for e in timeline][:2] == [("submit", "eve"), ("approve", "mary")]
    assert timeline[0]["comment"] == "for the new hires"
    for box, user in (("submitted", "eve"), ("handled", "fred"), ("cc", "eve")):
        items = client.get(f"/api/v1/tasks?box={box}", headers=auth(client, user)).json["items"]
        assert [i["record_id"] for i in items] == [request["id"]], box
    stats = client.get("/api/v1/workflow/stats", headers=auth(client, "ada")).json
    assert stats["flows"][0]["runs"] == {"approved": 1}
    assert client.get("/api/v1/notifications", headers=auth(client, "mary")).json["items"][0]["event"] == "task"
    assert client.get(url, headers=auth(client, "eve")).json["actions"] == ["comment", "cc"]
    assert client.get("/api/v1/notifications/failed", headers=auth(client, "ada")).json["items"] == []
    assert client.get("/api/v1/notifications/failed", headers=auth(client, "eve")).status_code == 403


def test_refusals_say_why_and_change_nothing(served: tuple[Company, flask.testing.FlaskClient]) -> None:
    company, client = served
    request = company.create("eve", title="Pens", amount=50)
    post(client, "eve", request, "submit")
    before = company.counts()
    cases = [
        (post(client, "fred", request, "approve"), 403, "not_yours"),  # fred reads every request, but it is mary's step
        (post(client, "otto", request, "approve"), 404, "not_found"),  # otto reads his own requests only
        (post(client, "mary", request, "reject"), 422, "comment_required"),
        (post(client, "mary", request, "transfer", user="ivan"), 422, "inactive_user"),
        (post(client, "mary", request, "approve", comment=5), 422, "type"),
        (post(client, "mary", request, "approve", colour="red"), 422, "unknown_field"),
        (client.post("/api/v1/nothing/1/workflow/approve", headers=auth(client, "mary")), 404, "not_found"),
        (client.post("/api/v1/purchase_request/999/workflow/approve", headers=auth(client, "mary")), 404, "not_found"),
        (client.get("/api/v1/tasks?box=later", headers=auth(client, "mary")), 422, "unknown_box"),
        (client.get("/api/v1/tasks"), 401, "unauthenticated"),
        (client.post(f"/api/v1/purchase_request/{request['id']}/workflow/approve"), 401, "unauthenticated"),
        (client.get("/api/v1/tasks", headers={"Authorization": "Bearer fw_" + "x" * 43}), 401, "unauthenticated"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json["errors"][0]["code"]) == (status, code), response.json
    assert company.counts() == before
    assert post(client, "mary", request, "approve").status_code == 200
    again = post(client, "mary", request, "approve")
    assert again.status_code == 409 and "already approved" in again.json["errors"][0]["message"]


def test_statistics_follow_the_report_grants_and_their_rows(served: tuple[Company, flask.testing.FlaskClient]) -> None:
    company, client = served
    request = company.create("eve", title="Laptops", amount=100)
    post(client, "eve", request, "submit")
    post(client, "mary", request, "approve")

    def stats(user: str, query: str = "") -> flask.Response:
        return client.get(f"/api/v1/workflow/stats{query}", headers=auth(client, user))

    for user in ("ada", "fred", "mary"):  # admin; finance reports on all rows; Sales' manager on Sales' rows
        assert stats(user).json["flows"][0]["runs"] == {"approved": 1}, user
        assert [a["approver"] for a in stats(user).json["approvers"]] == ["mary"], user
    # Finance's manager reports on Finance's rows only: Sales' request is not counted
    assert stats("fiona").json == {"flows": [], "steps": [], "approvers": []}
    # staff hold no report grant: nothing, and naming the flow is refused
    assert stats("eve").json == {"flows": [], "steps": [], "approvers": []}
    refused = stats("eve", "?flow=purchase_approval")
    assert refused.status_code == 403 and refused.json["errors"][0]["field"] == "flow"
    assert stats("eve", "?flow=nothing_like_it").status_code == 404


def test_notifications_are_marked_read_by_their_owner_only(served: tuple[Company, flask.testing.FlaskClient]) -> None:
    company, client = served
    for title in ("Pens", "Paper"):
        post(client, "eve", company.create("eve", title=title, amount=100), "submit")
    mine = client.get("/api/v1/notifications?unread=1", headers=auth(client, "mary")).json["items"]
    assert len(mine) == 2
    ids = [n["id"] for n in mine]
    # someone else's ids change nothing; bad bodies are refused
    assert client.post("/api/v1/notifications/read", json={"ids": ids}, headers=auth(client, "eve")).json == {"marked": 0}
    for body in ({}, {"ids": []}, {"ids": ["1"]}, {"ids": ids, "all": True}, {"every": True}, {"all": False}):
        response = client.post("/api/v1/notifications/read", json=body, headers=auth(client, "mary"))
        assert response.status_code == 422, body
    assert len(client.get("/api/v1/notifications?unread=1", headers=auth(client, "mary")).json["items"]) == 2
    assert client.post("/api/v1/notifications/read", json={"ids": ids[:1]}, headers=auth(client, "mary")).json == {"marked": 1}
    assert [n["id"] for n in client.get("/api/v1/notifications?unread=1", headers=auth(client, "mary")).json["items"]] == ids[1:]
    assert client.post("/api/v1/notifications/read", json={"all": True}, headers=auth(client, "mary")).json == {"marked": 1}
    assert client.get("/api/v1/notifications?unread=1", headers=auth(client, "mary")).json["items"] == []
    assert client.post("/api/v1/notifications/read", json={"all": True}).status_code == 401
