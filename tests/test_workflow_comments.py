"""Which approval actions need a comment is metadata: ``comment_required`` on the approval
(default: reject and return) and on a step (replacing it there). A refused action answers
422 ``comment_required`` through the API and records nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from metadata_project import problem_lines, write_project
from web_login import token_for
from workflow_deployment import PURCHASE_APPROVAL, Company

from formwork.security.accounts import Accounts
from formwork.web import create_app

CONFIGURED = """
    kind: approval
    name: purchase_approval
    entity: purchase_request
    comment_required: [submit, withdraw]
    steps:
      - {name: manager, approvers: {manager_of: requester}}
      - {name: finance, approvers: {user: fred}, comment_required: [approve, reject]}
    """

# approvers act on records they may read (the API answers 404 otherwise)
ROLES = {
    "metadata/staff.yaml": """
        kind: role
        name: staff
        grants:
          purchase_request: {actions: [create, read, update], rows: all}
        """,
    "metadata/manager.yaml": """
        kind: role
        name: manager
        grants:
          purchase_request: {actions: [read], rows: department_tree}
        """,
    "metadata/roles.yaml": """
        kind: role
        name: finance
        grants:
          purchase_request: {actions: [read], rows: all}
        """,
}


def serve(company: Company) -> flask.testing.FlaskClient:
    return create_app(company.project, app_model=company.app, engine=company.engine, config={"TESTING": True}).test_client()


def post(client: flask.testing.FlaskClient, caller: str, record: dict, action: str, **body: object) -> flask.Response:
    token = client.application.config.setdefault("test_tokens", {})
    if caller not in token:
        token[caller] = token_for(client.application.extensions["formwork"], caller)
    return client.post(
        f"/api/v1/purchase_request/{record['id']}/workflow/{action}", json=body, headers={"Authorization": f"Bearer {token[caller]}"}
    )


def refused(response: flask.Response, action: str) -> bool:
    error = response.json["errors"][0]
    return (response.status_code, error["code"], error["message"]) == (422, "comment_required", f"a comment is required to {action}: say why")


@pytest.fixture
def configured(tmp_path: Path, db_url: str) -> Iterator[tuple[Company, flask.testing.FlaskClient]]:
    company = Company(tmp_path, db_url, CONFIGURED, extra=ROLES)
    Accounts(company.records).grant("eve", "staff")
    yield company, serve(company)
    company.close()


def test_the_approval_and_its_steps_say_which_actions_need_a_comment(configured: tuple[Company, flask.testing.FlaskClient]) -> None:
    company, client = configured
    request = company.create("eve", title="Tablets", amount=900)
    before = company.counts()
    assert refused(post(client, "eve", request, "submit"), "submit")
    assert company.counts() == before and company.status(request) == "draft"
    assert post(client, "eve", request, "submit", comment="for the field team").status_code == 200

    # at the manager step the approval's list holds: reject and return need none now
    before = company.counts()
    assert refused(post(client, "eve", request, "withdraw"), "withdraw")
    assert company.counts() == before and company.status(request) == "pending"
    returned = post(client, "mary", request, "return")
    assert returned.status_code == 200 and company.status(request) == "draft"
    post(client, "eve", request, "submit", comment="again")
    assert post(client, "mary", request, "approve").status_code == 200

    # the finance step's own list replaces the approval's
    before = company.counts()
    assert refused(post(client, "fred", request, "approve"), "approve")
    assert refused(post(client, "fred", request, "reject"), "reject")
    assert company.counts() == before and company.waiting("fred") == [request["id"]]
    assert post(client, "fred", request, "approve", comment="within budget").status_code == 200
    assert company.status(request) == "approved"


def test_without_the_key_reject_and_return_need_a_comment(tmp_path: Path, db_url: str) -> None:
    company = Company(tmp_path, db_url, PURCHASE_APPROVAL, extra=ROLES)
    Accounts(company.records).grant("eve", "staff")
    client = serve(company)
    request = company.create("eve", title="Pens", amount=50)
    assert post(client, "eve", request, "submit").status_code == 200
    before = company.counts()
    assert refused(post(client, "mary", request, "reject"), "reject")
    assert refused(post(client, "mary", request, "return"), "return")
    assert refused(post(client, "mary", request, "comment"), "comment")
    assert company.counts() == before
    assert post(client, "mary", request, "approve").status_code == 200 and company.status(request) == "approved"
    company.close()


def test_an_unknown_action_in_comment_required_is_a_metadata_error(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "metadata/request.yaml": "kind: entity\nname: request\nfields: {title: string}\n",
        "metadata/request_approval.yaml": (
            "kind: approval\nname: request_approval\nentity: request\ncomment_required: [reject, aprove]\n"
            "steps: [{name: lead, approvers: {user: ada}, comment_required: [submit]}]\n"
        ),
    })
    lines = problem_lines(tmp_path)
    assert [line.split(" [")[0] for line in lines] == [
        "metadata/request_approval.yaml:4: comment_required[1]:",
        "metadata/request_approval.yaml:5: steps[0].comment_required[0]:",
    ], lines
    assert "'aprove'" in lines[0] and "'submit'" in lines[1]
