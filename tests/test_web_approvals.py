"""Approvals on the screens of the example deployment: the inbox, the approval panel of a
record (its actions and timeline) and notifications, through a test client logged in as the
demo's people, with every refusal shown and nothing written; on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from browser import served_page
from web_login import logged_in

from formwork.metadata import compile_project
from formwork.metadata.model import App
from formwork.metadata.project import load_project
from formwork.records import Actor
from formwork.seeding import seed_demo
from formwork.storage import make_engine, migrate
from formwork.web import build_runtime, create_app
from formwork.web.flow_screens import INBOX_PAGE_SIZE, Words
from formwork.workflow.actions import FlowEngine

CHAIRS = "客户定制办公椅备货"  # huang.lei's seeded draft, 45,000: manager, then finance


class Site:
    """The example deployment, seeded and served (not over a socket: a test client)."""

    def __init__(self, root: Path, db_url: str) -> None:
        project = load_project(root, environ={"DATABASE_URL": db_url})
        app_model = compile_project(project)
        self.engine = make_engine(db_url)
        migrate(self.engine, app_model, allow_destructive=False)
        seed_demo(project, build_runtime(project, app_model, self.engine).records)
        self.web = create_app(project, app_model=app_model, engine=self.engine, config={"TESTING": True})
        self.runtime = self.web.extensions["formwork"]
        self.tables = self.runtime.schema.metadata.tables

    def screens(self, username: str) -> Any:
        return logged_in(self.web.test_client(), self.runtime, username)

    def row(self, table: str, **where: Any) -> dict[str, Any]:
        t = self.tables[table]
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(t).where(*[t.c[k] == v for k, v in where.items()])).mappings().one())

    def actor(self, username: str) -> Actor:
        user = self.row("fw_user", username=username)
        roles = self.tables["fw_user_role"]
        with self.engine.connect() as conn:
            held = frozenset(conn.execute(sa.select(roles.c.role).where(roles.c.user_id == user["id"])).scalars())
        return Actor(user["id"], username, held, user["department"], "admin" in held)

    def flows(self) -> FlowEngine:
        return FlowEngine(self.runtime.records)

    def written(self) -> dict[str, Any]:
        """Every workflow row and the purchase requests' status and version: to show that a
        refusal wrote nothing."""
        with self.engine.connect() as conn:
            counts = {name: conn.execute(sa.select(sa.func.count()).select_from(self.tables[name])).scalar_one()
                      for name in ("fw_flow_instance", "fw_task", "fw_timeline", "fw_notification", "fw_job", "fw_audit")}
            tasks = self.tables["fw_task"]
            counts["tasks"] = sorted(tuple(r) for r in conn.execute(sa.select(tasks.c.id, tasks.c.state)))
            requests = self.tables["purchase_request"]
            counts["requests"] = sorted(tuple(r) for r in conn.execute(sa.select(requests.c.id, requests.c.status, requests.c.version)))
        return counts


@pytest.fixture
def site(example_project: Path, db_url: str) -> Iterator[Site]:
    made = Site(example_project, db_url)
    yield made
    made.engine.dispose()


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def alerts(page: str) -> list[tuple[str, str]]:
    """(kind, text) of the flashed messages on a page."""
    found = re.findall(r'class="alert alert-(\w+) alert-dismissable">.*?</button>\s*(.*?)\s*</div>', page, re.S)
    return [(kind, html.unescape(text)) for kind, text in found]


def panel(page: str) -> str:
    start = page.find('<section class="formwork-flow')
    return page[start:page.find("</section>", start)] if start >= 0 else ""


def actions_of(page: str) -> list[str]:
    return re.findall(r'class="formwork-flow-action[^"]*" data-action="([^"]+)"', page)


def act(client: Any, entity: str, record_id: int, action: str, *, token: bool = True, **fields: str) -> Any:
    """Post an action from the record's details page, as its form does; the response."""
    page = client.get(f"/admin/{entity}/details/?id={record_id}").text
    data = {"action": action, **fields}
    if token:
        data["csrf_token"] = csrf(page)
    return client.post(f"/admin/{entity}/flow/?id={record_id}", data=data)


def outcome(client: Any, response: Any) -> list[tuple[str, str]]:
    """The messages of the page an action redirected to."""
    assert response.status_code == 302, response.text
    return alerts(client.get(response.location).text)


def inbox_rows(client: Any, box: str = "waiting", page: int = 1) -> list[list[str]]:
    text = client.get(f"/admin/inbox/?box={box}&page={page}").text
    body = text[text.find("<tbody>"):text.find("</tbody>")]
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S) if "<td colspan" not in row]


def timeline_rows(page: str) -> list[list[str]]:
    table = page[page.find('class="table table-sm mb-0 formwork-timeline"'):]
    body = table[table.find("<tbody>"):table.find("</tbody>")]
    return [[html.unescape(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_a_request_is_submitted_and_approved_on_the_screens_and_refusals_change_nothing(site: Site) -> None:
    chairs = site.row("purchase_request", title=CHAIRS)
    details = f"/admin/purchase_request/details/?id={chairs['id']}"
    huang, wu = site.screens("huang.lei"), site.screens("wu.hao")

    # the requester's draft offers him Submit; his manager sees the draft but has nothing to do yet
    assert actions_of(huang.get(details).text) == ["submit"]
    waiting = panel(wu.get(details).text)
    assert "Draft" in waiting and "Nothing for you to do here now." in waiting and actions_of(waiting) == []

    assert outcome(huang, act(huang, "purchase_request", chairs["id"], "submit")) == [("success", "Submit (提交): done. Status: Pending.")]
    assert site.row("purchase_request", id=chairs["id"])["status"] == "pending"

    # wu.hao finds it in his inbox: title linked to the record, type, step, from whom, since when
    [row] = inbox_rows(wu)
    assert row[:4] == [chairs["code"], "Purchase request", "Manager review", "黄磊 (huang.lei)"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", row[4]) and row[5] == "Pending (待处理)"
    assert f'href="{details}"' in wu.get("/admin/inbox/").text
    page = panel(wu.get(details).text)
    assert "Manager review" in page and "吴昊 (wu.hao)" in page
    assert actions_of(page) == ["approve", "reject", "return", "transfer", "delegate", "add_approver", "comment", "cc"]

    before = site.written()
    # a finance member may read every request, but this step's task is not hers
    liu = site.screens("liu.fang")
    assert outcome(liu, act(liu, "purchase_request", chairs["id"], "approve", comment="ok")) == [
        ("danger", "Approve (同意): you have no task on this purchase_request")]
    assert site.written() == before
    # a rejection must say why
    assert outcome(wu, act(wu, "purchase_request", chairs["id"], "reject")) == [
        ("danger", "Reject (拒绝): a comment is required to reject: say why")]
    assert site.written() == before
    # a post without the session's CSRF token is refused before anything runs
    refused = act(wu, "purchase_request", chairs["id"], "approve", token=False, comment="ok")
    assert refused.status_code == 403 and "This form has expired" in refused.text
    assert site.written() == before
    # a colleague who may not read the request sees neither it nor its panel, and cannot act on it
    emily = site.screens("emily.carter")
    hidden = emily.get(details)
    assert hidden.status_code == 302 and alerts(emily.get(hidden.location).text) == [("danger", "Record does not exist.")]
    token = csrf(emily.get("/admin/inbox/").text)
    blind = emily.post(f"/admin/purchase_request/flow/?id={chairs['id']}", data={"csrf_token": token, "action": "approve"})
    assert outcome(emily, blind) == [("danger", "Record does not exist.")]
    assert inbox_rows(emily) == [] and site.written() == before

    # the manager approves with a comment: the request moves on to finance's countersign
    done = outcome(wu, act(wu, "purchase_request", chairs["id"], "approve", comment="客户已确认，同意备货"))
    assert done == [("success", "Approve (同意): done. Status: Pending.")]
    assert inbox_rows(wu) == []
    assert [r[:3] for r in inbox_rows(wu, "handled")] == [[chairs["code"], "Purchase request", "Manager review"]]
    assert inbox_rows(wu, "handled")[0][5] == "Approved (已同意)"
    assert [r[2] for r in inbox_rows(liu)] == ["Finance countersign"]
    assert [r[0] for r in inbox_rows(huang, "submitted")] == [chairs["code"]]

    # the requester follows it on the timeline: who, what, step, comment
    page = huang.get(details).text
    assert [r[1:5] for r in timeline_rows(page)] == [
        ["黄磊 (huang.lei)", "Submit (提交)", "", ""],
        ["吴昊 (wu.hao)", "Approve (同意)", "Manager review", "客户已确认，同意备货"],
    ]
    # he may still withdraw it (nobody has decided on the finance step yet), urge, comment and copy it
    assert "Finance countersign" in panel(page) and actions_of(page) == ["withdraw", "urge", "comment", "cc"]


def test_pickers_for_transfer_and_return_and_a_wrong_user_is_refused(site: Site) -> None:
    chairs = site.row("purchase_request", title=CHAIRS)
    site.flows().act("purchase_request", chairs["id"], "submit", site.actor("huang.lei"))
    # tang.jie has left: nobody can hand him a task any more
    site.runtime.records.update("user", site.row("fw_user", username="tang.jie")["id"], {"active": False}, Actor.system(), "test", None)
    wu = site.screens("wu.hao")
    page = wu.get(f"/admin/purchase_request/details/?id={chairs['id']}").text
    transfer = page[page.find('data-action="transfer"'):page.find("</form>", page.find('data-action="transfer"'))]
    people = re.findall(r'<option value="([^"]+)">([^<]+)</option>', transfer)
    assert ("li.na", "李娜 (li.na)") in people and ("zhao.min", "赵敏 (zhao.min)") in people
    assert all(name not in ("wu.hao", "tang.jie") for name, _text in people), "not oneself, not someone who has left"
    back = page[page.find('data-action="return"'):page.find("</form>", page.find('data-action="return"'))]
    assert re.findall(r'<option value="([^"]+)">', back) == ["initiator"], "the first step returns only to the initiator"
    adding = page[page.find('data-action="add_approver"'):page.find("</form>", page.find('data-action="add_approver"'))]
    assert re.findall(r'name="position".*?</select>', adding, re.S) and 'value="before">Before me (前加签)' in adding

    before = site.written()
    assert outcome(wu, act(wu, "purchase_request", chairs["id"], "transfer", user="tang.jie")) == [
        ("danger", "Transfer (转交): cannot transfer: tang.jie is not an active user")]
    assert outcome(wu, act(wu, "purchase_request", chairs["id"], "transfer")) == [
        ("danger", "Transfer (转交): transfer needs 'user': the username of the other person")]
    assert site.written() == before
    # a refused action keeps what was typed: the comment is back in its form, once
    refused = act(wu, "purchase_request", chairs["id"], "transfer", user="tang.jie", comment="客户由唐杰跟进")
    shown = wu.get(refused.location).text
    assert '<textarea class="form-control" id="comment-transfer" name="comment" rows="1">客户由唐杰跟进</textarea>' in shown
    assert '<textarea class="form-control" id="comment-approve" name="comment" rows="1"></textarea>' in shown
    assert "客户由唐杰跟进" not in wu.get(refused.location).text
    assert site.written() == before

    assert outcome(wu, act(wu, "purchase_request", chairs["id"], "transfer", user="li.na", comment="李娜负责这个客户"))[0][0] == "success"
    li = site.screens("li.na")
    assert [r[0] for r in inbox_rows(li)] == [chairs["code"]] and inbox_rows(wu) == []
    # she sends it back to the requester, who may submit it again
    assert outcome(li, act(li, "purchase_request", chairs["id"], "return", step="initiator", comment="请补充客户确认函")) == [
        ("success", "Return (退回): done. Status: Draft.")]
    huang = site.screens("huang.lei")
    page = huang.get(f"/admin/purchase_request/details/?id={chairs['id']}").text
    assert actions_of(page) == ["submit", "comment", "cc"]
    entries = timeline_rows(page)
    assert [e[2] for e in entries] == ["Submit (提交)", "Transfer (转交)", "Return (退回)"]
    assert entries[1][4] == "李娜负责这个客户" and "to: li.na" in entries[1][6]
    # the edit page carries the same panel
    edit = huang.get(f"/admin/purchase_request/edit/?id={chairs['id']}").text
    assert actions_of(edit) == ["submit", "comment", "cc"] and "请补充客户确认函" in panel(edit)


def test_a_workflow_transition_on_the_screens(site: Site) -> None:
    orders = site.tables["sales_order"]
    customers = site.tables["customer"]
    with site.engine.connect() as conn:
        order = conn.execute(
            sa.select(orders.c.id, orders.c.code).select_from(orders.join(customers, customers.c.id == orders.c.customer))
            .where(customers.c.name == "南京金陵商贸有限公司", orders.c.status == "draft")
        ).one()
    details = f"/admin/sales_order/details/?id={order.id}"
    # the rep may confirm his draft; cancelling is for the sales manager
    assert actions_of(site.screens("huang.lei").get(details).text) == ["confirm"]
    li = site.screens("li.na")
    page = li.get(details).text
    assert actions_of(page) == ["confirm", "cancel"] and "Cancel order" in panel(page) and "Comment (required)" in panel(page)

    before = site.written(), site.row("sales_order", id=order.id)
    assert outcome(li, act(li, "sales_order", order.id, "cancel")) == [("danger", "Cancel order: a comment is required to cancel: say why")]
    assert (site.written(), site.row("sales_order", id=order.id)) == before
    assert outcome(li, act(li, "sales_order", order.id, "cancel", comment="客户取消")) == [("success", "Cancel order: done. Status: Cancelled.")]
    entries = timeline_rows(li.get(details).text)
    assert [(e[1], e[2], e[4]) for e in entries] == [("李娜 (li.na)", "Cancel order", "客户取消")]
    assert "from_state: draft; to_state: cancelled" in entries[0][6]

    # finance may read orders but not edit them: the edit link (as in a notification) opens the details
    moved = site.screens("liu.fang").get(f"/admin/sales_order/edit/?id={order.id}")
    assert moved.status_code == 302 and moved.location.endswith(details)


def test_inbox_pages_and_notifications_unread_first(site: Site) -> None:
    flows, tang = site.flows(), site.actor("tang.jie")
    product = site.row("product", sku="OF-A4-80")["id"]
    made = []
    for number in range(INBOX_PAGE_SIZE + 1):
        values = {"title": f"Paper {number}", "category": "office", "justification": "printing",
                  "lines": [{"product": product, "quantity": 1, "unit_price": "25.00"}]}
        record = site.runtime.records.create("purchase_request", values, tang, "screen")
        flows.act("purchase_request", record["id"], "submit", tang)
        made.append(record["code"])
    guo = site.screens("guo.peng")
    first, second = inbox_rows(guo), inbox_rows(guo, page=2)
    assert [r[0] for r in first + second] == made[::-1], "newest first, a page at a time"
    assert len(first) == INBOX_PAGE_SIZE and "Older" in guo.get("/admin/inbox/").text
    assert "Newer" in guo.get("/admin/inbox/?page=2").text and "Older" not in guo.get("/admin/inbox/?page=2").text
    assert guo.get("/admin/inbox/?box=nonsense").status_code == 404

    # one notification read already (newest): the unread ones come first
    notes = site.tables["fw_notification"]
    me = site.row("fw_user", username="guo.peng")["id"]
    with site.engine.begin() as conn:
        newest = conn.execute(sa.select(sa.func.max(notes.c.id)).where(notes.c.user_id == me)).scalar_one()
        conn.execute(notes.update().where(notes.c.id == newest).values(read_at=datetime.now(UTC)))
    page = guo.get("/admin/notifications/").text
    states = re.findall(r'<tr class="(formwork-unread|formwork-read)[^"]*">', page)
    assert states == ["formwork-unread"] * INBOX_PAGE_SIZE + ["formwork-read"]
    subjects = re.findall(r"<td title=\"[^\"]*\">([^<]+)</td>", page)
    assert subjects[-1] == f"Waiting for your approval: {made[-1]}" and subjects[0] == f"Waiting for your approval: {made[-2]}"
    # nobody else's notifications show
    assert "Waiting for your approval" not in site.screens("huang.lei").get("/admin/notifications/").text
    # mark all read: needs the CSRF token, then every one of guo.peng's reads as read, nobody else's changes
    def unread(username: str) -> int:
        user = site.row("fw_user", username=username)["id"]
        with site.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(notes.c.user_id == user, notes.c.read_at.is_(None))).scalar_one()

    others_before = unread("huang.lei")
    assert guo.post("/admin/notifications/read").status_code == 403 and unread("guo.peng") == INBOX_PAGE_SIZE
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert guo.post("/admin/notifications/read", data={"csrf_token": token}).status_code == 302
    assert unread("guo.peng") == 0 and unread("huang.lei") == others_before
    assert "Mark all as read" not in guo.get("/admin/notifications/").text


def test_the_screens_speak_the_deployments_language() -> None:
    english = Words(App(name="a"))
    both = Words(App(name="b", locales=("en", "zh"), default_locale="en"))
    chinese = Words(App(name="c", locales=("zh", "en"), default_locale="zh"))
    assert [w.name("box_waiting") for w in (english, both, chinese)] == ["Waiting for me", "Waiting for me (待我审批)", "待我审批"]
    assert [w.say("timeline") for w in (english, both, chinese)] == ["Timeline", "Timeline", "审批记录"]


@pytest.fixture
def served_site(site: Site) -> Iterator[tuple[Site, Any, str]]:
    """The site over a real socket and a headless Chromium page."""
    with served_page(site.web) as (page, base):
        yield site, page, base


def log_in(page: Any, base: str, username: str) -> None:
    """Log in through the login page with the demo password, starting from the home page."""
    page.goto(f"{base}/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo123")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def open_inbox(page: Any, box: str = "waiting") -> None:
    """Through the menu: Approvals, then Inbox, then the box's tab."""
    page.click("text=Approvals (审批)")
    page.click("text=Inbox (待办)")
    page.click(f"ul.formwork-inbox-tabs a[data-box={box}]")


def message(page: Any) -> tuple[str, str]:
    """The kind (success, danger) and text of the last flashed message."""
    alert = page.locator(".alert-dismissable").last
    kind = next(c for c in (alert.get_attribute("class") or "").split() if c.startswith("alert-") and c != "alert-dismissable")
    return kind.removeprefix("alert-"), alert.inner_text().replace("×", "").strip()


@pytest.mark.browser
def test_the_demo_walkthrough_in_a_browser(served_site: tuple[Site, Any, str]) -> None:
    site, page, base = served_site
    chairs = site.row("purchase_request", title=CHAIRS)

    # huang.lei finds his draft in the list, opens it and submits it
    log_in(page, base, "huang.lei")
    page.goto(f"{base}/admin/purchase_request/")
    page.locator("tr", has_text=CHAIRS).locator("a[title='View Record']").click()
    assert page.locator(".formwork-flow-status").inner_text() == "Draft"
    page.click("form[data-action=submit] button")
    assert message(page) == ("success", "Submit (提交): done. Status: Pending.")
    assert page.locator(".formwork-flow-step").inner_text() == "Manager review"
    assert page.locator(".formwork-flow-waiting").inner_text() == "吴昊 (wu.hao)"
    page.click("button:has-text('Log out')")

    # wu.hao sees it in his inbox and approves it with a comment
    log_in(page, base, "wu.hao")
    open_inbox(page)
    row = page.locator("table.formwork-inbox tr", has_text="黄磊 (huang.lei)")
    assert "Manager review" in row.inner_text()
    row.locator(f"a:has-text('{chairs['code']}')").click()
    page.fill("form[data-action=approve] textarea[name=comment]", "客户已确认样品，同意")
    page.click("form[data-action=approve] button")
    assert message(page) == ("success", "Approve (同意): done. Status: Pending.")
    assert page.locator(".formwork-flow-step").inner_text() == "Finance countersign"
    open_inbox(page)
    assert page.locator("table.formwork-inbox tbody").inner_text().strip() == "Nothing here."
    page.click("button:has-text('Log out')")

    # a finance member rejects it without saying why: the screen says a comment is needed, nothing changes
    log_in(page, base, "liu.fang")
    open_inbox(page)
    page.locator("table.formwork-inbox tr", has_text=chairs["code"]).locator("a").click()
    before = site.written()
    page.click("form[data-action=reject] button")
    assert message(page) == ("danger", "Reject (拒绝): a comment is required to reject: say why")
    assert site.written() == before
    assert page.locator(".formwork-flow-status").inner_text() == "Pending"
    page.click("button:has-text('Log out')")

    # the requester follows it on the timeline, from "Submitted by me"
    log_in(page, base, "huang.lei")
    open_inbox(page, "submitted")
    page.locator("table.formwork-inbox tr", has_text=chairs["code"]).locator("a").click()
    lines = [line.split("\t") for line in page.locator("table.formwork-timeline tbody").inner_text().strip().split("\n")]
    assert [line[1:5] for line in lines] == [
        ["黄磊 (huang.lei)", "Submit (提交)", "", ""],
        ["吴昊 (wu.hao)", "Approve (同意)", "Manager review", "客户已确认样品，同意"],
    ]
