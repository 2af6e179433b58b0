"""Approvals on the screens: the inbox, the approval panel of a record and notifications.

- ``FlowRecordView`` is the record screen of every entity. On an entity with a workflow or
  approval, its details and edit pages carry the panel: status, current step, who it waits
  for, one form per action the user may take now (``FlowEngine.state``) and the timeline.
  The forms post to ``/admin/<entity>/flow/?id=``, which runs ``FlowEngine.act`` as the
  logged-in user; a refusal is flashed and changes nothing.
- ``InboxView`` (``/admin/inbox/``): the four boxes of ``FlowEngine.inbox`` as tabs.
- ``NotificationsView`` (``/admin/notifications/``): the user's in-app notifications.

Everything runs as the logged-in user through the app's one ``FlowEngine``; a record the
user may not read shows no panel and takes no action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import flask
import sqlalchemy as sa
from flask_admin import Admin, BaseView, expose
from flask_admin.babel import gettext

from formwork.metadata.model import STATUS_FIELD, App, Approval, Entity, Workflow, label_text
from formwork.records import Actor, PermissionDenied, RecordNotFound, RecordQuery
from formwork.web.auth import current_actor
from formwork.web.forms import entity_label, prettify
from formwork.web.runtime import Runtime, flow_engine
from formwork.web.screens import RecordRow, RecordView, screen_actor
from formwork.workflow.actions import ADD_POSITIONS
from formwork.workflow.errors import WorkflowError
from formwork.workflow.notify import mark_read, notifications_of
from formwork.workflow.tasks import BOXES

INBOX_PAGE_SIZE = 20
# The user pickers list at most this many people (the ones the user may read, by username).
USER_OPTION_CAP = 500
NOTIFICATION_LIMIT = 100
USER_ACTIONS = ("transfer", "delegate", "add_approver", "remove_approver", "cc")
# Every platform word of these screens in English and Chinese, the OA terms users know.
WORDS: dict[str, tuple[str, str]] = {
    "approvals": ("Approvals", "审批"),
    "inbox": ("Inbox", "待办"),
    "notifications": ("Notifications", "通知"),
    "box_waiting": ("Waiting for me", "待我审批"),
    "box_submitted": ("Submitted by me", "我发起的"),
    "box_handled": ("Handled by me", "我已处理"),
    "box_cc": ("CC'd to me", "抄送我的"),
    "submit": ("Submit", "提交"),
    "approve": ("Approve", "同意"),
    "reject": ("Reject", "拒绝"),
    "return": ("Return", "退回"),
    "withdraw": ("Withdraw", "撤回"),
    "transfer": ("Transfer", "转交"),
    "delegate": ("Delegate", "委派"),
    "add_approver": ("Add approver", "加签"),
    "remove_approver": ("Remove approver", "减签"),
    "urge": ("Urge", "催办"),
    "comment": ("Comment", "评论"),
    "cc": ("CC", "抄送"),
    "skip": ("Skipped", "跳过"),
    "finish": ("Finished", "结束"),
    "remind": ("Reminded", "提醒"),
    "escalate": ("Escalated", "升级"),
    "timeout": ("Timed out", "超时"),
    "auto_approve": ("Approved automatically", "自动同意"),
    "auto_reject": ("Rejected automatically", "自动拒绝"),
    "no_approver": ("No approver found", "无审批人"),
    "back_to_step": ("Back to an earlier step", "退回上一步"),
    "pending": ("Pending", "待处理"),
    "approved": ("Approved", "已同意"),
    "rejected": ("Rejected", "已拒绝"),
    "transferred": ("Transferred", "已转交"),
    "delegated": ("Delegated", "已委派"),
    "cancelled": ("Cancelled", "已取消"),
    "skipped": ("Skipped", "已跳过"),
    "unread": ("Unread", "未读"),
    "read": ("Read", "已读"),
    "mark_all_read": ("Mark all as read", "全部标为已读"),
    "running": ("In progress", "审批中"),
    "withdrawn": ("Withdrawn", "已撤回"),
    "returned": ("Returned", "已退回"),
    "before": ("Before me", "前加签"),
    "after": ("After me", "后加签"),
    "alongside": ("Alongside me", "并加签"),
    "initiator": ("The initiator", "发起人"),
    "title": ("Title", "标题"),
    "type": ("Type", "类型"),
    "step": ("Step", "步骤"),
    "from": ("From", "发起人"),
    "since": ("Since", "时间"),
    "state": ("State", "状态"),
    "status": ("Status", "状态"),
    "waiting_for": ("Waiting for", "当前审批人"),
    "timeline": ("Timeline", "审批记录"),
    "when": ("When", "时间"),
    "who": ("Who", "处理人"),
    "what": ("Action", "操作"),
    "on_behalf_of": ("On behalf of", "代表"),
    "details": ("Details", "详情"),
    "user": ("User", "人员"),
    "position": ("Position", "位置"),
    "return_to": ("Return to", "退回到"),
    "required": ("required", "必填"),
    "optional": ("optional", "选填"),
    "no_actions": ("Nothing for you to do here now.", "当前没有需要您处理的操作。"),
    "no_items": ("Nothing here.", "暂无内容。"),
    "no_timeline": ("Not submitted yet.", "尚未提交。"),
    "newer": ("Newer", "上一页"),
    "older": ("Older", "下一页"),
    "subject": ("Subject", "主题"),
    "message": ("Message", "内容"),
    "record": ("Record", "记录"),
}


class Words:
    """The screens' words in the deployment's language: Chinese when its default locale is
    Chinese, English otherwise; names of boxes, actions and states also carry the Chinese in
    brackets when the deployment offers Chinese as well."""

    def __init__(self, app: App):
        self.chinese = app.default_locale.lower().startswith("zh")
        self.bilingual = not self.chinese and any(locale.lower().startswith("zh") for locale in app.locales)

    def say(self, key: str) -> str:
        """A heading or sentence: one language."""
        english, chinese = WORDS[key]
        return chinese if self.chinese else english

    def name(self, key: str) -> str:
        """The name of a box, action or state: "Approve (同意)" in a bilingual deployment."""
        if key not in WORDS:
            return prettify(key)
        english, chinese = WORDS[key]
        if self.chinese:
            return chinese
        return f"{english} ({chinese})" if self.bilingual else english


@dataclass(frozen=True)
class ActionForm:
    """One action the user may take now, as a form: ``comment`` is required, optional or
    none; ``users``, ``steps`` and ``positions`` are the pickers it needs, as (value, text)."""

    action: str
    label: str
    comment: str
    button: str
    users: tuple[tuple[str, str], ...] | None = None
    steps: tuple[tuple[str, str], ...] | None = None
    positions: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a record's timeline, ready to show."""

    at: str
    who: str
    what: str
    step: str
    comment: str
    on_behalf_of: str
    details: str


# The session key of a refused action's comment, shown again in its form (once).
DRAFT_KEY = "fw_flow_draft"
DRAFT_LIMIT = 2000


@dataclass(frozen=True)
class FlowPanel:
    """What the approval panel of one record shows to one user."""

    flow: str
    kind: str
    status: str
    step: str
    waiting_for: tuple[str, ...]
    actions: tuple[ActionForm, ...]
    timeline: tuple[TimelineEntry, ...]
    post_url: str
    # after a refusal: the action and the comment the user had typed, to type it no more
    draft_action: str = ""
    draft_comment: str = ""


def when(text: str | None) -> str:
    """An ISO time of the workflow (UTC) as the screens show times."""
    if not text:
        return ""
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")


def readable_users(runtime: Runtime, actor: Actor) -> dict[str, str]:
    """username -> "full name (username)" of the active users ``actor`` may read, by username
    (at most USER_OPTION_CAP): the people the pickers offer and the timeline names."""
    query = RecordQuery(filters={"active": [True]}, sort=("username",), limit=USER_OPTION_CAP)
    try:
        users = runtime.records.list("user", actor, query)
    except PermissionDenied:
        return {}
    shown = {}
    for user in users:
        username = user.get("username")
        if username:
            full_name = user.get("full_name")
            shown[username] = f"{full_name} ({username})" if full_name else username
    return shown


class FlowRecordView(RecordView):
    """The record screens, with the approval panel on entities that have a flow."""

    def __init__(self, runtime: Runtime, entity: Entity, category: str | None):
        super().__init__(runtime, entity, category)
        self.flow: Workflow | Approval | None = runtime.app_model.flow_for(entity.name)
        self.words = Words(runtime.app_model)
        if self.flow is not None:
            self.details_template = "formwork/record_details.html"
            self.edit_template = "formwork/record_edit.html"

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        # A notification links to the edit page; someone who may only read the record (an
        # approver, typically) lands on its details page instead of the list.
        if name == "edit_view" and flask.request.method == "GET" and not self.can_edit:
            return flask.redirect(self.get_url(".details_view", **flask.request.args.to_dict()))
        return None

    def render(self, template: str, **kwargs: Any) -> str:
        model = kwargs.get("model")
        if self.flow is not None and isinstance(model, RecordRow) and template in (self.details_template, self.edit_template):
            kwargs["flow_panel"] = self.panel(model.values)
            kwargs["flow_words"] = self.words
        return super().render(template, **kwargs)

    # The panel

    def panel(self, record: dict[str, Any]) -> FlowPanel:
        """The approval panel of ``record`` (which the user has just read) for the logged-in user."""
        flow = self.flow
        assert flow is not None
        actor = screen_actor()
        engine = flow_engine(self.runtime)
        state = engine.state(self.entity.name, record["id"], actor)
        people = readable_users(self.runtime, actor)
        others = tuple((u, text) for u, text in people.items() if u != actor.username)
        locale = self.locale
        draft = flask.session.pop(DRAFT_KEY, None)
        if not (isinstance(draft, dict) and draft.get("entity") == self.entity.name and draft.get("id") == record["id"]):
            draft = {}
        return FlowPanel(
            flow=label_text(flow.label, locale, prettify(flow.name)),
            kind=state["kind"],
            status=self.status_label(state["status"]),
            step=self.step_label(state["step"]),
            waiting_for=tuple(people.get(u, u) for u in state["waiting_for"]),
            actions=tuple(self.action_form(name, state, others) for name in state["actions"]),
            timeline=tuple(self.timeline_entry(entry, people) for entry in engine.timeline(self.entity.name, record["id"])),
            post_url=self.get_url(".flow_action_view", id=record["id"]),
            draft_action=str(draft.get("action", "")),
            draft_comment=str(draft.get("comment", "")),
        )

    def status_label(self, status: str | None) -> str:
        """The status's label in the default locale (the status field's option)."""
        field = self.entity.fields.get(STATUS_FIELD)
        for option in field.options if field is not None else ():
            if option.value == status:
                return label_text(option.label, self.locale, option.value)
        return status or ""

    def step_label(self, step: str | None) -> str:
        """An approval step's label in the default locale, else its name."""
        if step and isinstance(self.flow, Approval):
            for candidate in self.flow.steps:
                if candidate.name == step:
                    return label_text(candidate.label, self.locale, step)
        return step or ""

    def action_label(self, action: str) -> str:
        """A workflow transition's label, else the name of an approval action (or timeline entry)."""
        if isinstance(self.flow, Workflow):
            for transition in self.flow.transitions:
                if transition.name == action:
                    return label_text(transition.label, self.locale, prettify(action))
        return self.words.name(action)

    def action_form(self, action: str, state: dict[str, Any], users: tuple[tuple[str, str], ...]) -> ActionForm:
        """The form of ``action`` in the flow's ``state``, its pickers filled (``users``: who may be named)."""
        flow = self.flow
        if isinstance(flow, Workflow):
            rule = next((t.comment for t in flow.transitions if t.name == action and state["status"] in t.from_states), "optional")
            return ActionForm(action, self.action_label(action), rule, "btn-primary")
        button = {"approve": "btn-success", "reject": "btn-danger", "submit": "btn-primary"}.get(action, "btn-outline-secondary")
        comment = "required" if action in state.get("comment_required", ()) else "optional"
        steps = None
        if action == "return" and isinstance(flow, Approval):
            names = [s.name for s in flow.steps]
            current = names.index(state["step"]) if state["step"] in names else 0
            steps = (("initiator", self.words.name("initiator")), *((s.name, self.step_label(s.name)) for s in flow.steps[:current]))
        return ActionForm(
            action,
            self.action_label(action),
            comment,
            button,
            users=users if action in USER_ACTIONS else None,
            steps=steps,
            positions=tuple((p, self.words.name(p)) for p in ADD_POSITIONS) if action == "add_approver" else None,
        )

    def timeline_entry(self, entry: dict[str, Any], people: dict[str, str]) -> TimelineEntry:
        """One timeline entry as shown, people by full name where ``people`` knows them."""
        details = []
        for key, value in (entry.get("details") or {}).items():
            shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
            details.append(f"{key}: {shown}")
        user = entry.get("user") or ""
        principal = entry.get("on_behalf_of") or ""
        return TimelineEntry(
            at=when(entry["at"]),
            who=people.get(user, user),
            what=self.action_label(entry["action"]),
            step=self.step_label(entry.get("step")),
            comment=entry.get("comment") or "",
            on_behalf_of=people.get(principal, principal),
            details="; ".join(details),
        )

    # Acting

    @expose("/flow/", methods=("POST",))
    def flow_action_view(self) -> Any:
        """Run the posted action on the record's flow as the logged-in user; back to the
        record with a message saying what happened or why nothing did."""
        actor = screen_actor()
        record_id = flask.request.args.get("id", "")
        if self.flow is None or not record_id.isdigit():
            flask.abort(404)
        back = self.get_url(".details_view", id=record_id)
        try:
            self.runtime.records.get(self.entity.name, int(record_id), actor)
        except (RecordNotFound, PermissionDenied):
            # outside the user's rows: the same answer as for a record that does not exist
            flask.flash(gettext("Record does not exist."), "error")
            return flask.redirect(self.get_url(".index_view"))
        form = flask.request.form
        action = form.get("action", "").strip()
        options = {key: value.strip() for key in ("comment", "user", "step", "position") if (value := form.get(key)) and value.strip()}
        label = self.action_label(action) if action else "?"
        try:
            result = flow_engine(self.runtime).act(self.entity.name, int(record_id), action, actor, **options)
        except WorkflowError as refused:
            flask.flash(f"{label}: {refused.message}", "error")
            if options.get("comment"):
                flask.session[DRAFT_KEY] = {"entity": self.entity.name, "id": int(record_id), "action": action,
                                            "comment": options["comment"][:DRAFT_LIMIT]}
            return flask.redirect(back)
        flask.flash(f"{label}: done. {self.words.say('status')}: {self.status_label(result.status)}.", "success")
        return flask.redirect(back)


class _UserView(BaseView):
    """A page of the logged-in user's own (their inbox, their notifications)."""

    def __init__(self, runtime: Runtime, name: str, endpoint: str, url: str, category: str):
        super().__init__(name=name, endpoint=endpoint, url=url, category=category)
        self.runtime = runtime
        self.words = Words(runtime.app_model)

    def is_accessible(self) -> bool:
        actor = current_actor()
        return actor is not None and actor.user_id is not None

    def record_link(self, entity: str | None, record_id: int | None) -> str | None:
        """The details page of a record, when its entity still exists."""
        if entity is None or record_id is None or entity not in self.runtime.app_model.entities:
            return None
        return flask.url_for(f"records_{entity}.details_view", id=record_id)

    def entity_name(self, entity: str | None) -> str:
        """The entity's label, else its name as stored."""
        found = self.runtime.app_model.entities.get(entity or "")
        return entity_label(found, self.runtime.app_model.default_locale) if found is not None else entity or ""


class InboxView(_UserView):
    """The user's approval inbox: what waits for them, what they submitted, handled or got
    a copy of, newest first, a page at a time."""

    def __init__(self, runtime: Runtime, category: str):
        words = Words(runtime.app_model)
        super().__init__(runtime, words.name("inbox"), "approvals_inbox", "/admin/inbox", category)

    @expose("/")
    def index(self) -> Any:
        actor = screen_actor()
        box = flask.request.args.get("box", "waiting")
        if box not in BOXES:
            flask.abort(404)
        page = flask.request.args.get("page", "1")
        number = int(page) if page.isdigit() and int(page) > 0 else 1
        engine = flow_engine(self.runtime)
        # one more than a page says whether an older page exists
        items = engine.inbox(actor.user_id or 0, box, INBOX_PAGE_SIZE + 1, (number - 1) * INBOX_PAGE_SIZE)
        more = len(items) > INBOX_PAGE_SIZE
        items = items[:INBOX_PAGE_SIZE]
        senders = self.initiators(engine.tables, items)
        rows = [
            {
                "title": item["title"],
                "link": self.record_link(item["entity"], item["record_id"]),
                "type": self.entity_name(item["entity"]),
                "step": self.step_label(item["flow"], item["step"]),
                "from": senders.get(item.get("task_id") or item.get("instance_id") or 0, ""),
                "since": when(item["created_at"]),
                "state": self.words.name(item["state"]),
            }
            for item in items
        ]
        tabs = [(name, self.words.name(f"box_{name}")) for name in BOXES]
        return self.render("formwork/inbox.html", box=box, tabs=tabs, rows=rows, page=number, more=more, words=self.words)

    def step_label(self, flow_name: str, step: str | None) -> str:
        """The step's label in the approval's metadata, else its name."""
        flow = self.runtime.app_model.approvals.get(flow_name)
        for candidate in flow.steps if flow is not None else ():
            if candidate.name == step:
                return label_text(candidate.label, self.runtime.app_model.default_locale, step)
        return step or ""

    def initiators(self, tables: dict[str, sa.Table], items: list[dict[str, Any]]) -> dict[int, str]:
        """Who started the run of each item (task id, or run id in the submitted box), in one
        query: the inbox's own rows do not carry the initiator."""
        tasks, runs, users = tables["fw_task"], tables["fw_flow_instance"], tables["fw_user"]
        task_ids = [i["task_id"] for i in items if "task_id" in i]
        run_ids = [i["instance_id"] for i in items if "instance_id" in i]
        if task_ids:
            key = tasks.c.id
            source = tasks.join(runs, runs.c.id == tasks.c.instance_id)
            wanted = task_ids
        elif run_ids:
            key, source, wanted = runs.c.id, runs, run_ids
        else:
            return {}
        query = (
            sa.select(key, users.c.username, users.c.full_name)
            .select_from(source.join(users, users.c.id == runs.c.initiator_id))
            .where(key.in_(wanted))
        )
        with self.runtime.engine.connect() as conn:
            return {row[0]: f"{row.full_name} ({row.username})" if row.full_name else row.username for row in conn.execute(query)}


class NotificationsView(_UserView):
    """The user's in-app notifications: unread first, each newest first."""

    def __init__(self, runtime: Runtime, category: str):
        words = Words(runtime.app_model)
        super().__init__(runtime, words.name("notifications"), "approvals_notifications", "/admin/notifications", category)

    @expose("/")
    def index(self) -> Any:
        actor = screen_actor()
        engine = flow_engine(self.runtime)
        user_id = actor.user_id or 0
        with self.runtime.engine.connect() as conn:
            unread = notifications_of(conn, engine.tables, user_id, True, NOTIFICATION_LIMIT)
            read = [n for n in notifications_of(conn, engine.tables, user_id, False, NOTIFICATION_LIMIT) if n["read_at"] is not None]
        rows = [
            {
                "subject": n["subject"],
                "body": n["body"],
                "link": self.record_link(n["entity"], n["record_id"]),
                "type": self.entity_name(n["entity"]),
                "since": when(n["created_at"]),
                "unread": n["read_at"] is None,
            }
            for n in unread + read
        ]
        return self.render("formwork/notifications.html", rows=rows, words=self.words)

    @expose("/read", methods=["POST"])
    def read(self) -> Any:
        """Mark every notification of the user read."""
        actor = screen_actor()
        engine = flow_engine(self.runtime)
        with self.runtime.engine.begin() as conn:
            mark_read(conn, engine.tables, actor.user_id or 0, engine.clock())
        return flask.redirect(flask.url_for(".index"))


def register_flow_screens(admin: Admin, runtime: Runtime) -> None:
    """Add the "Approvals" menu (inbox and notifications) to the screens."""
    words = Words(runtime.app_model)
    category = words.name("approvals")
    admin.add_view(InboxView(runtime, category))
    admin.add_view(NotificationsView(runtime, category))
