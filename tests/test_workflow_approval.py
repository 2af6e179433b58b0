"""Approvals end to end through ``FlowEngine``: tiers, modes, rejections, returns, transfers,
added approvers, the no-approver rules and skipping, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from workflow_deployment import Company

from formwork.workflow.errors import ActionConflict, ActionInvalid, ActionRefused


def approval(steps: str, **options: str) -> str:
    """An approval of purchase_request with the given steps (YAML list lines)."""
    lines = ["kind: approval", "name: purchase_approval", "entity: purchase_request", "steps:"]
    lines += [f"  {line}" for line in steps.strip().splitlines()]
    lines += [f"{key}: {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def company(tmp_path: Path, db_url: str) -> Iterator[Company]:
    made = Company(tmp_path, db_url)
    yield made
    made.close()


def make(tmp_path: Path, db_url: str, text: str) -> Company:
    return Company(tmp_path, db_url, text)


def test_small_request_needs_the_manager_only(company: Company) -> None:
    request = company.create("eve", title="Chairs", amount=3000)
    assert request["status"] == "draft"
    assert company.act("eve", request, "submit")["step"] == "manager"
    assert company.waiting("mary") == [request["id"]]
    result = company.act("mary", request, "approve", comment="fine")
    assert result["status"] == "approved" and company.status(request) == "approved"
    assert company.waiting("mary") == []
    assert company.timeline(request) == [("submit", "eve"), ("approve", "mary"), ("skip", "system"), ("skip", "system"), ("finish", "system")]
    entries = company.flows.timeline("purchase_request", request["id"])
    assert entries[1]["comment"] == "fine" and entries[1]["step"] == "manager"
    assert [e["details"].get("condition") for e in entries if e["action"] == "skip"] == ["amount > 5000", "amount > 100000"]


def test_finance_countersigns_mid_sized_requests(company: Company) -> None:
    request = company.create("eve", title="Laptops", amount=20000)
    company.act("eve", request, "submit")
    company.act("mary", request, "approve")
    assert company.waiting("fred") == [request["id"]] and company.waiting("fay") == [request["id"]]
    company.act("fred", request, "approve")
    assert company.status(request) == "pending"
    company.act("fay", request, "approve")
    assert company.status(request) == "approved"
    assert company.waiting("chen") == []


def test_large_requests_also_go_to_the_ceo(company: Company) -> None:
    request = company.create("eve", title="Server room", amount=200000)
    company.act("eve", request, "submit")
    for approver in ("mary", "fred", "fay"):
        company.act(approver, request, "approve")
    assert company.status(request) == "pending" and company.waiting("chen") == [request["id"]]
    company.act("chen", request, "approve")
    assert company.status(request) == "approved"
    assert [a for a, _ in company.timeline(request)] == ["submit", "approve", "approve", "approve", "approve", "finish"]


def test_one_rejection_settles_a_countersign(company: Company) -> None:
    request = company.create("eve", title="Laptops", amount=20000)
    company.act("eve", request, "submit")
    company.act("mary", request, "approve")
    company.act("fred", request, "reject", comment="over budget")
    assert company.status(request) == "rejected"
    with pytest.raises(ActionConflict, match="already decided by fred"):
        company.act("fay", request, "approve")
    assert company.waiting("fay") == []


def test_any_mode_first_decision_wins(tmp_path: Path, db_url: str) -> None:
    company = make(tmp_path, db_url, approval("- {name: finance, approvers: {role: finance}, mode: any}"))
    request = company.create("eve", title="Paper", amount=100)
    company.act("eve", request, "submit")
    company.act("fay", request, "approve")
    assert company.status(request) == "approved"
    before = company.counts()
    with pytest.raises(ActionConflict, match="already decided by fay") as conflict:
        company.act("fred", request, "approve")
    assert conflict.value.status == 409
    assert company.counts() == before
    company.close()


def test_sequence_mode_goes_one_after_another(tmp_path: Path, db_url: str) -> None:
    company = make(tmp_path, db_url, approval("- {name: review, approvers: [{user: fay}, {user: fred}], mode: sequence}"))
    request = company.create("eve", title="Paper", amount=100)
    company.act("eve", request, "submit")
    assert company.waiting("fay") == [request["id"]] and company.waiting("fred") == []
    with pytest.raises(ActionConflict, match="not your turn"):
        company.act("fred", request, "approve")
    company.act("fay", request, "approve")
    assert company.waiting("fred") == [request["id"]] and company.status(request) == "pending"
    company.act("fred", request, "approve")
    assert company.status(request) == "approved"
    company.close()


def test_pass_ratio_passes_with_enough_approvals(tmp_path: Path, db_url: str) -> None:
    company = make(tmp_path, db_url, approval("- {name: board, approvers: [{role: finance}, {user: otto}], mode: all, pass_ratio: 0.6}"))
    request = company.create("mary", title="Paper", amount=100)
    company.act("mary", request, "submit")
    company.act("fred", request, "approve")
    company.act("fay", request, "reject", comment="no")
    assert company.status(request) == "pending"  # 2 of 3 can still approve
    company.act("otto", request, "approve")
    assert company.status(request) == "approved"
    company.close()


def test_pass_ratio_rejects_once_it_cannot_be_reached(tmp_path: Path, db_url: str) -> None:
    company = make(tmp_path, db_url, approval("- {name: board, approvers: [{role: finance}, {user: otto}], mode: all, pass_ratio: 0.6}"))
    request = company.create("mary", title="Paper", amount=100)
    company.act("mary", request, "submit")
    company.act("fred", request, "reject", comment="no")
    company.act("fay", request, "reject", comment="no")
    assert company.status(request) == "rejected"
    company.close()


def test_rejection_back_to_the_previous_step(tmp_path: Path, db_url: str) -> None:
    steps = "- {name: manager, approvers: {manager_of: requester}}\n- {name: finance, approvers: {role: finance}}"
    company = make(tmp_path, db_url, approval(steps, on_reject="previous_step"))
    request = company.create("eve", title="Paper", amount=100)
    company.act("eve", request, "submit")
    company.act("mary", request, "approve")
    company.act("fred", request, "reject", comment="ask again")
    assert company.status(request) == "pending" and company.waiting("mary") == [request["id"]]
    company.act("mary", request, "approve")
    assert company.waiting("fred") == [request["id"]]
    company.act("fay", request, "reject", comment="still no")
    assert company.waiting("mary") == [request["id"]]
    company.close()


def test_rejection_that_ends_allows_no_resubmission(tmp_path: Path, db_url: str) -> None:
    company = make(tmp_path, db_url, approval("- {name: manager, approvers: {manager_of: requester}}", on_reject="end"))
    request = company.create("eve", title="Paper", amount=100)
    company.act("eve", request, "submit")
    company.act("mary", request, "reject", comment="no")
    assert company.status(request) == "rejected"
    with pytest.raises(ActionConflict, match="the record is rejected"):
        company.act("eve", request, "submit")
    company.close()


def test_rejected_to_the_initiator_can_be_submitted_again(company: Company) -> None:
    request = company.create("eve", title="Chairs", amount=300)
    company.act("eve", request, "submit")
    company.act("mary", request, "reject", comment="which chairs?")
    assert company.status(request) == "rejected"
    company.records.update("purchase_request", request["id"], {"title": "Blue chairs"}, company.actor("eve"), "api", company.get(request)["version"])
    company.act("eve", request, "submit")
    assert company.status(request) == "pending" and company.waiting("mary") == [request["id"]]


def test_return_to_a_chosen_earlier_step_and_to_the_initiator(company: Company) -> None:
    request = company.create("eve", title="Server room", amount=200000)
    company.act("eve", request, "submit")
    for approver in ("mary", "fred", "fay"):
        company.act(approver, request, "approve")
    company.act("chen", request, "return", step="finance", comment="check the quotes")
    assert company.status(request) == "pending"
    assert company.waiting("fred") == [request["id"]] and company.waiting("fay") == [request["id"]]
    company.act("fred", request, "return", comment="attach the quotes")
    assert company.status(request) == "draft" and company.waiting("fay") == []
    assert ("return", "fred") in company.timeline(request)


def test_return_refuses_a_step_not_yet_passed(company: Company) -> None:
    request = company.create("eve", title="Laptops", amount=20000)
    company.act("eve", request, "submit")
    before = company.counts()
    with pytest.raises(ActionInvalid, match="only to a step this record already passed"):
        company.act("mary", request, "return", step="finance", comment="x")
    with pytest.raises(ActionInvalid, match="no step 'audit'"):
        company.act("mary", request, "return", step="audit", comment="x")
    with pytest.raises(ActionInvalid, match="comment is required"):
        company.act("mary", request, "return")
    assert company.counts() == before and company.waiting("mary") == [request["id"]]


def test_withdraw_only_while_nobody_acted_on_the_step(company: Company) -> None:
    request = company.create("eve", title="Laptops", amount=20000)
    company.act("eve", request, "submit")
    with pytest.raises(ActionRefused, match="only the person who submitted"):
        company.act("otto", request, "withdraw")
    company.act("mary", request, "approve")
    company.act("fred", request, "approve")
    before = company.counts()
    with pytest.raises(ActionConflict, match="fred already acted on step finance"):
        company.act("eve", request, "withdraw")
    assert company.counts() == before and company.status(request) == "pending"

    other = company.create("eve", title="Pens", amount=50)
    company.act("eve", other, "submit")
    company.act("eve", other, "withdraw", comment="not needed")
    assert company.status(other) == "withdrawn" and company.waiting("mary") == []
    company.act("eve", other, "submit")
    assert company.status(other) == "pending"


def test_transfer_hands_the_task_on(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    before = company.counts()
    with pytest.raises(ActionInvalid, match="ivan is not an active user"):
        company.act("mary", request, "transfer", user="ivan")
    with pytest.raises(ActionInvalid, match="no user 'nobody'"):
        company.act("mary", request, "transfer", user="nobody")
    with pytest.raises(ActionInvalid, match="needs 'user'"):
        company.act("mary", request, "transfer")
    assert company.counts() == before
    company.act("mary", request, "transfer", user="otto", comment="you know this vendor")
    assert company.waiting("mary") == [] and company.waiting("otto") == [request["id"]]
    with pytest.raises(ActionConflict, match="transferred"):
        company.act("mary", request, "approve")
    company.act("otto", request, "approve")
    assert company.status(request) == "approved"


def test_added_approver_after_me_must_approve_too(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("mary", request, "add_approver", user="otto", position="after")
    assert company.waiting("otto") == []
    company.act("mary", request, "approve")
    assert company.status(request) == "pending" and company.waiting("otto") == [request["id"]]
    company.act("otto", request, "approve")
    assert company.status(request) == "approved"


def test_added_approver_before_me_decides_first(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("mary", request, "add_approver", user="otto", position="before")
    with pytest.raises(ActionConflict, match="not your turn"):
        company.act("mary", request, "approve")
    company.act("otto", request, "approve")
    assert company.waiting("mary") == [request["id"]]
    company.act("mary", request, "approve")
    assert company.status(request) == "approved"


def test_removing_an_added_approver(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("mary", request, "add_approver", user="otto", position="alongside")
    with pytest.raises(ActionInvalid, match="only an approver you added"):
        company.act("mary", request, "remove_approver", user="fred")
    company.act("mary", request, "remove_approver", user="otto")
    assert company.waiting("otto") == []
    company.act("mary", request, "approve")
    assert company.status(request) == "approved"


def test_delegate_gives_an_opinion_and_hands_back(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("mary", request, "delegate", user="otto")
    assert company.waiting("mary") == [] and company.waiting("otto") == [request["id"]]
    company.act("otto", request, "approve", comment="looks fine")
    assert company.status(request) == "pending" and company.waiting("mary") == [request["id"]]
    company.act("mary", request, "approve")
    assert company.status(request) == "approved"
    assert [e["on_behalf_of"] for e in company.flows.timeline("purchase_request", request["id"]) if e["user"] == "otto"] == ["mary"]


@pytest.mark.parametrize(
    ("rule", "who", "status"),
    [("admins", "ada", "pending"), ("auto_approve", None, "approved"), ("auto_reject", None, "rejected"), ("{user: fiona}", "fiona", "pending")],
)
def test_no_approver_follows_the_configured_rule(tmp_path: Path, db_url: str, rule: str, who: str | None, status: str) -> None:
    company = make(tmp_path, db_url, approval("- {name: manager, approvers: {manager_of: requester}}", on_no_approver=rule))
    request = company.create("chen", title="Car", amount=100)  # the CEO heads HQ: nobody above him
    company.act("chen", request, "submit")
    assert company.status(request) == status
    if who:
        assert company.waiting(who) == [request["id"]]
    actions = [a for a, _ in company.timeline(request)]
    assert actions[1] in ("no_approver", "auto_approve", "auto_reject")
    company.close()


def test_skip_when_the_approver_is_the_initiator(tmp_path: Path, db_url: str) -> None:
    steps = "- {name: sales, approvers: {user: mary}}\n- {name: finance, approvers: {user: fred}}"
    company = make(tmp_path, db_url, approval(steps))
    request = company.create("mary", title="Pens", amount=50)
    company.act("mary", request, "submit")
    assert company.waiting("mary") == [] and company.waiting("fred") == [request["id"]]
    company.close()


def test_no_skip_when_configured(tmp_path: Path, db_url: str) -> None:
    company = make(tmp_path, db_url, approval("- {name: sales, approvers: {user: mary}}", skip_initiator="false"))
    request = company.create("mary", title="Pens", amount=50)
    company.act("mary", request, "submit")
    assert company.waiting("mary") == [request["id"]]
    company.close()


def test_repeated_approver_is_skipped(tmp_path: Path, db_url: str) -> None:
    steps = "- {name: first, approvers: {user: fred}}\n- {name: second, approvers: [{user: fred}, {user: fay}], mode: all}"
    company = make(tmp_path, db_url, approval(steps))
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("fred", request, "approve")
    assert company.waiting("fred") == [] and company.waiting("fay") == [request["id"]]
    company.close()


def test_bad_actions_change_nothing(company: Company) -> None:
    request = company.create("eve", title="Laptops", amount=20000)
    with pytest.raises(ActionConflict, match="the record is draft"):
        company.act("mary", request, "approve")
    with pytest.raises(ActionRefused, match="only the person who created"):
        company.act("otto", request, "submit")
    company.act("eve", request, "submit")
    company.act("mary", request, "approve")
    before, record = company.counts(), company.get(request)
    with pytest.raises(ActionRefused, match="no task on this purchase_request") as not_yours:
        company.act("otto", request, "approve")
    assert not_yours.value.status == 403
    with pytest.raises(ActionConflict, match="already approved"):
        company.act("mary", request, "approve")
    with pytest.raises(ActionInvalid, match="comment is required to reject"):
        company.act("fred", request, "reject")
    with pytest.raises(ActionInvalid, match="no action 'sign'"):
        company.act("fred", request, "sign")
    assert company.counts() == before and company.get(request) == record


def test_cc_at_finish_and_by_hand(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("eve", request, "cc", user="otto")
    company.act("mary", request, "approve")
    cc = company.flows.inbox(company.user_id("otto"), "cc")
    assert [(i["record_id"], i["title"]) for i in cc] == [(request["id"], "Pens")]
    assert [i["record_id"] for i in company.flows.inbox(company.user_id("eve"), "cc")] == [request["id"]]
    assert [i["record_id"] for i in company.flows.inbox(company.user_id("eve"), "submitted")] == [request["id"]]
    assert [i["state"] for i in company.flows.inbox(company.user_id("mary"), "handled")] == ["approved"]
    with pytest.raises(ActionRefused, match="taking part"):
        company.act("fay", request, "comment", comment="hello")


def test_urge_is_rate_limited(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("eve", request, "urge", comment="please")
    before = company.counts()
    with pytest.raises(ActionConflict, match="urged a moment ago"):
        company.act("eve", request, "urge")
    assert company.counts() == before
    company.advance(hours=2)
    company.act("eve", request, "urge")
    assert [a for a, _ in company.timeline(request)].count("urge") == 2


def test_inbox_box_must_exist(company: Company) -> None:
    with pytest.raises(ActionInvalid, match="no box 'later'"):
        company.flows.inbox(company.user_id("eve"), "later")


def test_cc_at_start_and_at_finish(tmp_path: Path, db_url: str) -> None:
    company = make(tmp_path, db_url, approval("- {name: manager, approvers: {manager_of: requester}}", cc="[{user: otto}]", cc_when="both"))
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    otto = company.user_id("otto")
    assert [i["record_id"] for i in company.flows.inbox(otto, "cc")] == [request["id"]]
    company.act("mary", request, "approve")
    assert [i["record_id"] for i in company.flows.inbox(otto, "cc")] == [request["id"], request["id"]]
    company.close()


def test_transferring_a_task_keeps_the_approver_added_after_it(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("mary", request, "add_approver", user="otto", position="after")
    company.act("mary", request, "transfer", user="fiona")
    company.act("fiona", request, "approve")
    assert company.status(request) == "pending" and company.waiting("otto") == [request["id"]]
    company.act("otto", request, "approve")
    assert company.status(request) == "approved"
