"""Workflow actions: what users do to a record's flow, each in one transaction.

``FlowEngine.act`` runs one action (submit, approve, reject, return, withdraw, transfer,
delegate, add_approver, remove_approver, urge, comment, cc, or a plain workflow's
transition by name). Every action:

1. locks the record's row (``FOR UPDATE`` on PostgreSQL; SQLite's write lock is taken at
   BEGIN), so two people acting on one record at the same moment are served one after
   the other and the second sees what the first did;
2. checks the actor's part and the input, raising a ``WorkflowError`` that says why and
   changes nothing;
3. writes the tasks, the timeline, timers and notifications, and the record's ``status``
   through ``RecordService`` (channel ``workflow``), all in that one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from formwork.expressions import EvalContext, FieldScope, compile_python, parse
from formwork.metadata.model import STATUS_FIELD, App, Approval, ApprovalStep, Workflow
from formwork.records import Actor, HookContext, RecordNotFound, RecordService
from formwork.records.coerce import to_utc
from formwork.records.formulas import ActingUser
from formwork.records.hooks import call_hook
from formwork.records.rows import lookup_in
from formwork.workflow import notify
from formwork.workflow.approval import (
    ADDED,
    APPROVED,
    APPROVING_STATES,
    DELEGATE,
    DRAFT,
    GROUP,
    OPEN_TASK_STATES,
    PENDING,
    REJECTED,
    STEP_PASSED,
    STEP_REJECTED,
    TASK_APPROVED,
    TASK_CANCELLED,
    TASK_DELEGATED,
    TASK_PENDING,
    TASK_REJECTED,
    TASK_SKIPPED,
    TASK_TRANSFERRED,
    TASK_WAITING,
    WITHDRAWN,
    approval_machine,
    restore,
    snapshot,
    step_outcome,
)
from formwork.workflow.approvers import ApproverResolver, Resolution
from formwork.workflow.errors import ActionConflict, ActionInvalid, ActionRefused, FlowNotFound
from formwork.workflow.machine import workflow_machine
from formwork.workflow.tasks import inbox
from formwork.workflow.timeline import timeline_of, write_entry

APPROVAL_ACTIONS = (
    "submit",
    "approve",
    "reject",
    "return",
    "withdraw",
    "transfer",
    "delegate",
    "add_approver",
    "remove_approver",
    "urge",
    "comment",
    "cc",
)
ADD_POSITIONS = ("before", "after", "alongside")
# How often the initiator may urge the approvers of one flow (催办).
URGE_INTERVAL = timedelta(hours=1)
# Flow instance states.
RUNNING, RETURNED = "running", "returned"


@dataclass(frozen=True)
class ActionResult:
    """What an action left behind: the record's status and its flow's current step."""

    entity: str
    record_id: int
    action: str
    status: str | None
    step: str | None
    instance_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "record_id": self.record_id,
            "action": self.action,
            "status": self.status,
            "step": self.step,
            "instance_id": self.instance_id,
        }


class FlowEngine:
    """Runs the workflows and approvals of ``records.app`` (one per process is enough).

    ``clock`` gives "now" (UTC); tests pass their own to control time."""

    def __init__(self, records: RecordService, clock: Callable[[], datetime] | None = None) -> None:
        self.records = records
        self.app: App = records.app
        self.clock = clock or records.clock
        self.tables: dict[str, sa.Table] = {**records.schema.metadata.tables, **records.schema.tables}
        self._compiled: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------- entry points

    def act(
        self,
        entity: str,
        record_id: int,
        action: str,
        actor: Actor,
        comment: str | None = None,
        user: str | None = None,
        step: str | None = None,
        position: str | None = None,
    ) -> ActionResult:
        """Run ``action`` on the record's flow as ``actor``. ``user`` names the other person
        of transfer, delegate, add/remove approver and cc; ``step`` the step a return goes
        back to (none: back to the initiator); ``position`` where an added approver goes
        (before, after, alongside). Raises a ``WorkflowError`` and changes nothing when
        the action does not apply."""
        flow = self.app.flow_for(entity)
        if flow is None:
            raise FlowNotFound(f"{entity} has no workflow or approval", "no_flow")
        comment = (comment or "").strip() or None
        with self.records.transaction() as conn:
            run = _Run(self, conn, actor, to_utc(self.clock()), entity, record_id)
            if isinstance(flow, Workflow):
                run.transition(flow, action, comment)
            else:
                run.approval_action(flow, action, comment, user, step, position)
            return run.result(action)

    def state(self, entity: str, record_id: int, actor: Actor) -> dict[str, Any]:
        """The record's flow as ``actor`` sees it now: ``flow``, ``kind`` (approval or
        workflow), ``status``, the current ``step``, who it is ``waiting_for``, the
        ``actions`` the actor may take (what screens offer as buttons) and, for an approval,
        which of them need a comment (``comment_required``)."""
        flow = self.app.flow_for(entity)
        if flow is None:
            raise FlowNotFound(f"{entity} has no workflow or approval", "no_flow")
        with self.records.engine.connect() as conn:
            return _Run(self, conn, actor, to_utc(self.clock()), entity, record_id, lock=False).state(flow)

    def run_timer(self, kind: str, task_id: int, now: datetime) -> str:
        """Carry out a due timer of one task (remind, escalate, timeout) as the system, in
        the transaction open in this thread; returns what was done, for the job row."""
        with self.records.transaction() as conn:
            tasks = self.tables["fw_task"]
            task = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
            if task is None:
                return "obsolete"
            run = _Run(self, conn, Actor.system(), to_utc(now), task["entity"], task["record_id"])
            return run.timer(kind, task_id)

    def timeline(self, entity: str, record_id: int) -> list[dict[str, Any]]:
        """Every workflow action on the record, oldest first."""
        with self.records.engine.connect() as conn:
            return timeline_of(conn, self.tables, entity, record_id)

    def inbox(self, user_id: int, box: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """One box (waiting, submitted, handled, cc) of the user's inbox, newest first."""
        with self.records.engine.connect() as conn:
            return inbox(conn, self.tables, user_id, box, limit, offset)

    def condition(self, entity: str, text: str, record: Mapping[str, Any], actor: Actor, now: datetime, conn: sa.Connection) -> bool:
        """Whether expression ``text`` holds for ``record`` (compiled once per text)."""
        key = (entity, text)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = compile_python(parse(text), FieldScope(entities=self.app.entities, entity=entity))
        lookup = lookup_in(conn, self.app, self.records.tables)
        return compiled(record, EvalContext(user=ActingUser(actor, lookup), now=now, lookup=lookup)) is True


class _Run:
    """One action inside its transaction."""

    def __init__(self, engine: FlowEngine, conn: sa.Connection, actor: Actor, now: datetime, entity: str, record_id: int, lock: bool = True) -> None:
        self.engine = engine
        self.conn = conn
        self.actor = actor
        self.now = now
        self.entity = entity
        self.record_id = record_id
        self.tables = engine.tables
        self.task_table = self.tables["fw_task"]
        self.instance_table = self.tables["fw_flow_instance"]
        self.resolver = ApproverResolver(conn, engine.app, engine.records, engine.records.hooks)
        # One statement locks the record's row and reads its latest flow instance (the
        # lock is on the record only: FOR UPDATE OF it on PostgreSQL).
        table, instances = engine.records.tables[entity], self.instance_table
        latest = sa.select(sa.func.max(instances.c.id)).where(instances.c.entity == entity, instances.c.record_id == record_id).scalar_subquery()
        query = (
            sa.select(table.c.id.label("fw_record_id"), *[c.label(f"fw_instance_{c.name}") for c in instances.c])
            .select_from(table.outerjoin(instances, instances.c.id == latest))
            .where(table.c.id == record_id)
        )
        found = conn.execute(query.with_for_update(of=table) if lock else query).mappings().first()
        if found is None:
            raise FlowNotFound(f"{entity} {record_id} does not exist", "not_found")
        self.record = self._read()
        self.instance: dict[str, Any] | None = (
            {c.name: found[f"fw_instance_{c.name}"] for c in instances.c} if found["fw_instance_id"] is not None else None
        )
        self.approval: Approval | None = None

    # ------------------------------------------------------------- reading

    def _read(self) -> dict[str, Any]:
        try:
            return self.engine.records.get(self.entity, self.record_id, Actor.system())
        except RecordNotFound:
            raise FlowNotFound(f"{self.entity} {self.record_id} does not exist", "not_found") from None

    @property
    def status(self) -> str:
        return self.record.get(STATUS_FIELD) or ""

    def _tasks(self, **where: Any) -> list[dict[str, Any]]:
        t = self.task_table
        query = sa.select(t).where(*[t.c[k] == v for k, v in where.items()]).order_by(t.c.id)
        return [dict(r) for r in self.conn.execute(query).mappings()]

    def _step_tasks(self) -> list[dict[str, Any]]:
        inst = self._running()
        return self._tasks(instance_id=inst["id"], step_round=inst["step_round"], kind="approve")

    def _running(self) -> dict[str, Any]:
        assert self.instance is not None and self.instance["state"] == RUNNING
        return self.instance

    def _step(self) -> ApprovalStep:
        assert self.approval is not None and self.instance is not None
        return self.approval.steps[self.instance["step_index"]]

    def _comments_required(self) -> tuple[str, ...]:
        """The actions that need a comment now: the current step's list, else the approval's
        (of the run's own copy of the approval)."""
        assert self.approval is not None
        inst = self.instance
        if inst is not None and inst["state"] == RUNNING and inst["step_index"] is not None:
            step_rule = self._step().comment_required
            if step_rule is not None:
                return step_rule
        return self.approval.comment_required

    def _username(self, user_id: int | None) -> str:
        if user_id is None:
            return "system"
        if user_id == self.actor.user_id:
            return self.actor.username
        users = self.tables["fw_user"]
        return self.conn.execute(sa.select(users.c.username).where(users.c.id == user_id)).scalar() or f"user {user_id}"

    def result(self, action: str) -> ActionResult:
        inst = self.instance
        return ActionResult(
            entity=self.entity,
            record_id=self.record_id,
            action=action,
            status=self.record.get(STATUS_FIELD),
            step=inst["step_name"] if inst is not None and inst["state"] == RUNNING else None,
            instance_id=inst["id"] if inst is not None else None,
        )

    # ------------------------------------------------------------- writing

    def _set_status(self, status: str, extra: Mapping[str, Any] | None = None) -> None:
        values = {**(extra or {}), STATUS_FIELD: status}
        self.record = self.engine.records.update(self.entity, self.record_id, values, self.actor, "workflow", None)

    def _log(self, action: str, comment: str | None = None, step: str | None = None, user_id: Any = "actor", on_behalf_of: int | None = None, **details: Any) -> None:
        write_entry(
            self.conn,
            self.tables["fw_timeline"],
            entity=self.entity,
            record_id=self.record_id,
            instance_id=self.instance["id"] if self.instance else None,
            at=self.now,
            user_id=self.actor.user_id if user_id == "actor" else user_id,
            action=action,
            step_name=step,
            comment=comment,
            on_behalf_of=on_behalf_of,
            details=details,
        )

    def _update_instance(self, **values: Any) -> None:
        assert self.instance is not None
        t = self.instance_table
        self.conn.execute(t.update().where(t.c.id == self.instance["id"]).values(**values))
        self.instance.update(values)

    def _update_task(self, task: dict[str, Any], **values: Any) -> None:
        t = self.task_table
        self.conn.execute(t.update().where(t.c.id == task["id"]).values(**values))
        task.update(values)

    def _new_task(self, assignee: int, state: str, role: str = GROUP, kind: str = "approve", **values: Any) -> dict[str, Any]:
        inst = self.instance
        assert inst is not None
        row = {
            "instance_id": inst["id"],
            "entity": self.entity,
            "record_id": self.record_id,
            "flow": inst["flow"],
            "title": inst["title"],
            "step_name": inst["step_name"] if kind == "approve" else None,
            "step_index": inst["step_index"] if kind == "approve" else None,
            "step_round": inst["step_round"] if kind == "approve" else 0,
            "kind": kind,
            "role": role,
            "assignee_id": assignee,
            "state": state,
            "created_at": self.now,
            **values,
        }
        task_id = self.conn.execute(self.task_table.insert().values(**row)).inserted_primary_key[0]
        task = {**row, "id": task_id, "position": values.get("position", 0), "follows_id": values.get("follows_id"), "remind_count": 0}
        if state == TASK_PENDING:
            self._became_pending(task)
        return task

    def _became_pending(self, task: dict[str, Any]) -> None:
        """Timers and the notification of a task that now waits for its assignee."""
        approval = self.approval
        assert approval is not None
        jobs = self.tables["fw_job"]
        for kind, after in (("remind", approval.remind_after), ("escalate", approval.escalate_after), ("timeout", approval.timeout_after)):
            if after is not None:
                self.conn.execute(jobs.insert().values(kind=kind, task_id=task["id"], due_at=self.now + timedelta(seconds=after.seconds)))
        self._notify([task["assignee_id"]], "task")

    def _notify(self, user_ids: Sequence[int], event: str, comment: str | None = None) -> None:
        title = _title(self.engine.app, self.entity, self.record)
        step = self.instance["step_name"] if self.instance else None
        values = {"title": title, "step": step or "", "who": self._username(self.actor.user_id), "comment": comment or ""}
        notify.queue(self.conn, self.tables, user_ids, event, entity=self.entity, record_id=self.record_id, at=self.now, values=values)

    # ------------------------------------------------------------- what may be done

    def state(self, flow: Workflow | Approval) -> dict[str, Any]:
        actor = self.actor
        shown: dict[str, Any] = {"flow": flow.name, "status": self.status, "step": None, "waiting_for": [], "actions": []}
        if isinstance(flow, Workflow):
            shown["kind"] = "workflow"
            shown["actions"] = [
                t.name for t in workflow_machine(flow).available(self.status)
                if (not t.roles or actor.is_admin or actor.roles.intersection(t.roles))
                and (not t.when or self.engine.condition(self.entity, t.when, self.record, actor, self.now, self.conn))
            ]
            return shown
        shown["kind"] = "approval"
        actions: list[str] = []
        inst = self.instance
        if inst is None or inst["state"] != RUNNING or self.status != PENDING:
            starts = any(t.name == "submit" for t in approval_machine(flow).available(self.status))
            if starts and (actor.is_admin or actor.user_id == self.record.get("created_by")):
                actions.append("submit")
        else:
            self.approval = restore(inst["definition"])
            tasks = self._step_tasks()
            shown["step"] = inst["step_name"]
            shown["waiting_for"] = [self._username(t["assignee_id"]) for t in tasks if t["state"] == TASK_PENDING]
            mine = [t for t in tasks if t["assignee_id"] == actor.user_id and t["state"] == TASK_PENDING]
            if mine:
                actions += ["approve", "reject", "return"]
                if mine[0]["role"] != DELEGATE:
                    actions += ["transfer", "delegate", "add_approver"]
            if any(t["role"] == ADDED and t["added_by"] == actor.user_id and t["state"] in (TASK_PENDING, TASK_WAITING) for t in tasks):
                actions.append("remove_approver")
            if actor.is_admin or actor.user_id == inst["initiator_id"]:
                if not any(t["decided_by"] is not None for t in tasks):
                    actions.append("withdraw")
                last = inst["last_urged_at"]
                if last is None or self.now >= to_utc(last) + URGE_INTERVAL:
                    actions.append("urge")
        if inst is not None and self._involved():
            actions += ["comment", "cc"]
        shown["actions"] = actions
        if self.approval is None:
            self.approval = flow
        required = set(self._comments_required()) | {"comment"}
        shown["comment_required"] = [a for a in actions if a in required]
        return shown

    # ------------------------------------------------------------- plain workflows

    def transition(self, flow: Workflow, name: str, comment: str | None) -> None:
        machine = workflow_machine(flow)
        move = machine.fire(self.status or "without a status", name)
        if move.roles and not self.actor.is_admin and not self.actor.roles.intersection(move.roles):
            raise ActionRefused(f"only {', '.join(move.roles)} may {name} a {self.entity}", "role")
        _check_comment(name, comment, move.comment)
        if move.when and not self.engine.condition(self.entity, move.when, self.record, self.actor, self.now, self.conn):
            raise ActionConflict(f"cannot {name}: the condition '{move.when}' does not hold for this record", "condition")
        changes: dict[str, Any] = {}
        if move.hook:
            draft = {k: [dict(r) for r in v] if isinstance(v, list) else v for k, v in self.record.items()}
            ctx = HookContext(self.actor, self.engine.app, "workflow", self.record, self.engine.records, self.entity)
            call_hook(self.engine.records.hooks, move.hook, draft, ctx)
            entity = self.engine.app.entity(self.entity)
            changes = {k: v for k, v in draft.items() if k in entity.fields and entity.fields[k].is_stored and v != self.record.get(k)}
        before = self.status
        self._set_status(move.target, changes)
        self._log(name, comment, from_state=before, to_state=move.target)

    # ------------------------------------------------------------- approvals

    def approval_action(self, flow: Approval, action: str, comment: str | None, user: str | None, step: str | None, position: str | None) -> None:
        if action not in APPROVAL_ACTIONS:
            raise ActionInvalid(f"{flow.name} has no action '{action}' (actions: {', '.join(APPROVAL_ACTIONS)})", "unknown_action")
        if action == "submit":
            _check_comment(action, comment, "required" if action in flow.comment_required else "optional")
            self.submit(flow, comment)
            return
        self.approval = restore(self.instance["definition"]) if self.instance else flow
        _check_comment(action, comment, "required" if action == "comment" or action in self._comments_required() else "optional")
        if action in ("approve", "reject"):
            self.decide(action, comment)
        elif action == "return":
            self.send_back(step, comment)
        elif action == "withdraw":
            self.withdraw(comment)
        elif action in ("transfer", "delegate"):
            self.hand_over(action, _given(user, action), comment)
        elif action == "add_approver":
            self.add_approver(_given(user, action), position or "alongside", comment)
        elif action == "remove_approver":
            self.remove_approver(_given(user, action), comment)
        elif action == "urge":
            self.urge(comment)
        elif action == "comment":
            self.comment(comment)
        else:
            self.copy_to(_given(user, action), comment)

    def submit(self, flow: Approval, comment: str | None) -> None:
        approval_machine(flow).fire(self.status, "submit")
        if not self.actor.is_admin and self.actor.user_id != self.record.get("created_by"):
            raise ActionRefused(f"only the person who created this {self.entity} may submit it", "not_initiator")
        self.approval = flow
        values = {
            "entity": self.entity,
            "record_id": self.record_id,
            "flow": flow.name,
            "title": _title(self.engine.app, self.entity, self.record)[:300],
            "definition": snapshot(flow),
            "state": RUNNING,
            "step_index": None,
            "step_name": None,
            "step_round": 0,
            "initiator_id": self.actor.user_id,
            "started_at": self.now,
        }
        instance_id = self.conn.execute(self.instance_table.insert().values(**values)).inserted_primary_key[0]
        self.instance = {**values, "id": instance_id, "finished_at": None, "last_urged_at": None}
        self._log("submit", comment)
        self._set_status(PENDING)
        if flow.cc_when in ("start", "both"):
            self._copy_by_rules()
        self._enter(0)

    # --- steps

    def _enter(self, index: int, returning: bool = False) -> None:
        """Enter step ``index`` (or the first one after it that applies) and create its
        tasks; finish the flow when no step is left. ``returning``: the step was chosen by
        a return or a rejection, so its condition and the repeated-approver rule are not
        applied again."""
        approval = self.approval
        assert approval is not None
        while index < len(approval.steps):
            step = approval.steps[index]
            chosen, returning = returning, False
            if not chosen and step.when and not self.engine.condition(self.entity, step.when, self.record, self.actor, self.now, self.conn):
                self._log("skip", step=step.name, user_id=None, reason="condition", condition=step.when)
                index += 1
                continue
            initiator = self._running()["initiator_id"]
            approvers = self.resolver.resolve(step.approvers, Resolution(self.entity, self.record, initiator))
            self._update_instance(step_index=index, step_name=step.name, step_round=self._running()["step_round"] + 1)
            if not approvers:
                approvers = self._no_approver(step)
                if approvers is None:
                    return  # the flow was settled by the no-approver rule
                if not approvers:
                    index += 1
                    continue
            earlier = set() if chosen else self._approved_before()
            for position, user_id in enumerate(approvers):
                automatic = (approval.skip_initiator and user_id == initiator) or (approval.skip_repeated and user_id in earlier)
                if automatic:
                    reason = "initiator" if user_id == initiator else "approved_before"
                    self._new_task(user_id, TASK_SKIPPED, position=position, decided_at=self.now)
                    self._log("skip", step=step.name, user_id=None, on_behalf_of=user_id, reason=reason)
                else:
                    self._new_task(user_id, TASK_WAITING, position=position)
            # Tasks start waiting; settling makes pending whose turn it is, or passes the
            # step at once when the rules approved it already (and enters the next one).
            self._settle_step()
            return
        self._finish(APPROVED)

    def _no_approver(self, step: ApprovalStep) -> list[int] | None:
        """Apply the step's (else the approval's) rule for a step nobody resolves to.
        Returns the approvers to use instead ([] to pass the step), or None when the flow
        was settled."""
        approval = self.approval
        assert approval is not None
        rule = step.on_no_approver or approval.on_no_approver
        if rule == "auto_approve":
            self._log("auto_approve", step=step.name, user_id=None, reason="no_approver")
            return []
        if rule == "auto_reject":
            self._log("auto_reject", step=step.name, user_id=None, reason="no_approver")
            self._finish(REJECTED)
            return None
        if rule.startswith("user:"):
            found = self.resolver.user_by_name(rule.split(":", 1)[1])
            if found is not None and found["id"] in self.resolver.active([found["id"]]):
                self._log("no_approver", step=step.name, user_id=None, fallback=found["username"])
                return [int(found["id"])]
        admins = self.resolver.admins()
        if admins:
            self._log("no_approver", step=step.name, user_id=None, fallback="admins")
            return admins
        # Nobody at all can decide: reject with the reason on the timeline rather than wait forever.
        self._log("auto_reject", step=step.name, user_id=None, reason="no_approver_and_no_admin")
        self._finish(REJECTED)
        return None

    def _approved_before(self) -> set[int]:
        inst = self._running()
        t = self.task_table
        query = sa.select(t.c.assignee_id).where(
            t.c.instance_id == inst["id"], t.c.kind == "approve", t.c.state == TASK_APPROVED, t.c.step_round < inst["step_round"]
        )
        return {r.assignee_id for r in self.conn.execute(query)}

    def _activate(self, tasks: list[dict[str, Any]]) -> None:
        """Make pending the waiting tasks whose turn has come: those following an approved
        task, the next one of a sequence, and in other modes every waiting group task."""
        step = self._step()
        by_id = {t["id"]: t for t in tasks}
        for task in tasks:
            if task["state"] != TASK_WAITING:
                continue
            follows = by_id.get(task["follows_id"]) if task["follows_id"] else None
            if follows is not None:
                if follows["state"] in APPROVING_STATES or follows["state"] == TASK_CANCELLED:
                    self._update_task(task, state=TASK_PENDING, follows_id=None)
                    self._became_pending(task)
            elif task["role"] != GROUP or step.mode != "sequence":
                self._update_task(task, state=TASK_PENDING)
                self._became_pending(task)
        if step.mode == "sequence":
            group = sorted((t for t in tasks if t["role"] == GROUP and t["state"] not in (TASK_TRANSFERRED, TASK_CANCELLED)), key=lambda t: (t["position"], t["id"]))
            upcoming = next((t for t in group if t["state"] not in APPROVING_STATES), None)
            if upcoming is not None and upcoming["state"] == TASK_WAITING and not upcoming["follows_id"]:
                self._update_task(upcoming, state=TASK_PENDING)
                self._became_pending(upcoming)

    def _settle_step(self, tasks: list[dict[str, Any]] | None = None) -> str | None:
        """Activate whose turn it is, then move on when the step is passed or rejected.
        Returns the step's outcome when it is settled, else None. ``tasks``: the step's
        tasks as this action left them, when it read them already."""
        tasks = tasks if tasks is not None else self._step_tasks()
        self._activate(tasks)
        outcome = step_outcome(self._step(), tasks)
        if outcome == STEP_PASSED:
            self._cancel_open(tasks)
            self._enter(self._running()["step_index"] + 1)
            return outcome
        if outcome == STEP_REJECTED:
            self._cancel_open(tasks)
            self._after_rejection()
            return outcome
        return None

    def _cancel_open(self, tasks: list[dict[str, Any]]) -> None:
        """Cancel the open ones of ``tasks`` (one statement)."""
        still_open = [task for task in tasks if task["state"] in OPEN_TASK_STATES]
        if not still_open:
            return
        t = self.task_table
        self.conn.execute(t.update().where(t.c.id.in_([task["id"] for task in still_open])).values(state=TASK_CANCELLED))
        for task in still_open:
            task["state"] = TASK_CANCELLED

    def _after_rejection(self) -> None:
        approval = self.approval
        assert approval is not None
        if approval.on_reject == "previous_step":
            previous = self._previous_step()
            if previous is not None:
                self._log("back_to_step", step=approval.steps[previous].name, user_id=None, reason="rejected")
                self._enter(previous, returning=True)
                return
        self._finish(REJECTED)

    def _previous_step(self) -> int | None:
        """The index of the step entered last before the current one (with approvers)."""
        inst = self._running()
        t = self.task_table
        query = (
            sa.select(t.c.step_index)
            .where(t.c.instance_id == inst["id"], t.c.kind == "approve", t.c.step_index < inst["step_index"])
            .order_by(t.c.step_round.desc())
            .limit(1)
        )
        return self.conn.execute(query).scalar()

    def _finish(self, outcome: str) -> None:
        inst = self._running()
        t = self.task_table
        self.conn.execute(
            t.update().where(t.c.instance_id == inst["id"], t.c.kind == "approve", t.c.state.in_(OPEN_TASK_STATES)).values(state=TASK_CANCELLED)
        )
        self._update_instance(state=outcome, finished_at=self.now)
        self._log("finish", step=inst["step_name"], user_id=None, outcome=outcome)
        self._set_status(outcome)
        approval = self.approval
        assert approval is not None
        if approval.cc_when in ("finish", "both"):
            self._copy_by_rules()
        if inst["initiator_id"] is not None:
            self._notify([inst["initiator_id"]], "approved" if outcome == APPROVED else "rejected")

    def _copy_by_rules(self) -> None:
        approval = self.approval
        assert approval is not None
        inst = self.instance
        assert inst is not None
        for user_id in self.resolver.resolve(approval.cc, Resolution(self.entity, self.record, inst["initiator_id"])):
            self._new_task(user_id, "unread", kind="cc")
            self._notify([user_id], "cc")

    # --- the actor's own task

    def _my_task(self, action: str, tasks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The actor's pending task on the current step (among ``tasks`` when given), or a
        ``WorkflowError`` saying why there is none."""
        inst = self.instance
        if inst is not None and inst["state"] == RUNNING and self.status == PENDING:
            for task in tasks if tasks is not None else self._step_tasks():
                if task["assignee_id"] == self.actor.user_id and task["state"] == TASK_PENDING:
                    return task
        raise self._why_not(action)

    def _why_not(self, action: str) -> Exception:
        inst = self.instance
        mine = self._tasks(instance_id=inst["id"], assignee_id=self.actor.user_id, kind="approve") if inst else []
        if not mine:
            if self.status != PENDING:
                return ActionConflict(f"cannot {action}: the record is {self.status or 'not under approval'}", "wrong_state")
            return ActionRefused(f"you have no task on this {self.entity}", "not_yours")
        task = mine[-1]
        state = task["state"]
        if state == TASK_CANCELLED:
            t = self.task_table
            winner = self.conn.execute(
                sa.select(t.c.decided_by, t.c.state)
                .where(t.c.instance_id == task["instance_id"], t.c.step_round == task["step_round"], t.c.decided_by.is_not(None),
                       t.c.state.in_((TASK_APPROVED, TASK_REJECTED)), t.c.role != DELEGATE)
                .order_by(t.c.decided_at.desc(), t.c.id.desc())
                .limit(1)
            ).first()
            if winner is not None:
                return ActionConflict(f"already decided by {self._username(winner.decided_by)} ({winner.state})", "already_decided")
            return ActionConflict(f"cannot {action}: your task on step {task['step_name']} is no longer open (the record is {self.status})", "task_closed")
        if state in (TASK_APPROVED, TASK_REJECTED, TASK_SKIPPED):
            return ActionConflict(f"you already {'approved' if state != TASK_REJECTED else 'rejected'} this at step {task['step_name']}", "already_acted")
        if state == TASK_WAITING:
            return ActionConflict(f"it is not your turn yet on step {task['step_name']}", "not_your_turn")
        if state == TASK_TRANSFERRED:
            return ActionConflict("you transferred this task to someone else", "transferred")
        if state == TASK_DELEGATED:
            return ActionConflict("you delegated this task; it comes back to you when the delegate has given their opinion", "delegated")
        return ActionConflict(f"cannot {action}: the record is {self.status}", "wrong_state")

    def _other_user(self, username: str, action: str) -> int:
        found = self.resolver.user_by_name(username)
        if found is None:
            raise ActionInvalid(f"cannot {action}: there is no user '{username}'", "unknown_user")
        if int(found["id"]) not in self.resolver.active([found["id"]]):
            raise ActionInvalid(f"cannot {action}: {username} is not an active user", "inactive_user")
        if found["id"] == self.actor.user_id:
            raise ActionInvalid(f"cannot {action} to yourself", "self")
        return int(found["id"])

    # --- decisions

    def decide(self, action: str, comment: str | None) -> None:
        inst = self.instance
        # read once: the same list, updated in place, settles the step below
        tasks = self._step_tasks() if inst is not None and inst["state"] == RUNNING and self.status == PENDING else None
        task = self._my_task(action, tasks)
        verdict = TASK_APPROVED if action == "approve" else TASK_REJECTED
        self._update_task(task, state=verdict, decided_at=self.now, decided_by=self.actor.user_id, comment=comment)
        step = self._step()
        if task["role"] == DELEGATE:
            origin = self._tasks(id=task["origin_id"])[0]
            self._log(action, comment, step.name, on_behalf_of=origin["assignee_id"], opinion=True)
            self._update_task(origin, state=TASK_PENDING)
            self._became_pending(origin)
            return
        self._log(action, comment, step.name)
        self._settle_step(tasks)

    def send_back(self, step_name: str | None, comment: str | None) -> None:
        task = self._my_task("return")
        approval = self.approval
        assert approval is not None
        current = self._running()["step_index"]
        if step_name and step_name != "initiator":
            names = [s.name for s in approval.steps]
            if step_name not in names:
                raise ActionInvalid(f"cannot return: there is no step '{step_name}' (steps: {', '.join(names)})", "unknown_step")
            target = names.index(step_name)
            reached = self._tasks(instance_id=self._running()["id"], step_index=target, kind="approve")
            if target >= current or not reached:
                raise ActionInvalid(f"cannot return to step '{step_name}': only to a step this record already passed", "step_not_passed")
        else:
            target = None
        self._update_task(task, state=TASK_REJECTED, decided_at=self.now, decided_by=self.actor.user_id, comment=comment)
        self._cancel_open(self._step_tasks())
        self._log("return", comment, approval.steps[current].name, to=step_name or "initiator")
        if target is None:
            inst = self._running()
            self._update_instance(state=RETURNED, finished_at=self.now)
            self._set_status(DRAFT)
            if inst["initiator_id"] is not None:
                self._notify([inst["initiator_id"]], "returned", comment)
            return
        self._enter(target, returning=True)

    def withdraw(self, comment: str | None) -> None:
        inst = self.instance
        if inst is None or inst["state"] != RUNNING or self.status != PENDING:
            raise ActionConflict(f"cannot withdraw: the record is {self.status or 'not under approval'}", "wrong_state")
        if not self.actor.is_admin and self.actor.user_id != inst["initiator_id"]:
            raise ActionRefused("only the person who submitted it may withdraw it", "not_initiator")
        acted = [t for t in self._step_tasks() if t["decided_by"] is not None]
        if acted:
            who = self._username(acted[0]["decided_by"])
            raise ActionConflict(f"cannot withdraw: {who} already acted on step {inst['step_name']}", "approver_acted")
        self._cancel_open(self._tasks(instance_id=inst["id"], kind="approve"))
        self._update_instance(state=WITHDRAWN, finished_at=self.now)
        self._log("withdraw", comment, inst["step_name"])
        self._set_status(WITHDRAWN)

    def hand_over(self, action: str, username: str, comment: str | None) -> None:
        task = self._my_task(action)
        if task["role"] == DELEGATE:
            raise ActionRefused(f"a delegate gives an opinion and cannot {action} the task", "delegate")
        other = self._other_user(username, action)
        if any(t["assignee_id"] == other and t["state"] in OPEN_TASK_STATES for t in self._step_tasks()):
            raise ActionInvalid(f"cannot {action}: {username} already has a task on this step", "already_assigned")
        if action == "transfer":
            self._update_task(task, state=TASK_TRANSFERRED, decided_at=self.now, decided_by=self.actor.user_id, comment=comment)
            self._successor(task, other)
        else:
            self._update_task(task, state=TASK_DELEGATED)
            self._new_task(other, TASK_PENDING, role=DELEGATE, position=task["position"], origin_id=task["id"])
        self._log(action, comment, task["step_name"], to=username)

    def _successor(self, task: dict[str, Any], assignee: int) -> None:
        """A pending task for ``assignee`` in place of a transferred ``task``: same part in
        the step, and whoever waited for the old task now waits for the new one."""
        new = self._new_task(assignee, TASK_PENDING, role=task["role"], position=task["position"], follows_id=task["follows_id"], origin_id=task["id"])
        t = self.task_table
        self.conn.execute(t.update().where(t.c.follows_id == task["id"], t.c.state == TASK_WAITING).values(follows_id=new["id"]))

    def add_approver(self, username: str, position: str, comment: str | None) -> None:
        if position not in ADD_POSITIONS:
            raise ActionInvalid(f"position must be one of: {', '.join(ADD_POSITIONS)}", "position")
        task = self._my_task("add_approver")
        if task["role"] == DELEGATE:
            raise ActionRefused("a delegate gives an opinion and cannot add approvers", "delegate")
        other = self._other_user(username, "add an approver")
        if any(t["assignee_id"] == other and t["state"] in OPEN_TASK_STATES for t in self._step_tasks()):
            raise ActionInvalid(f"cannot add {username}: they already have a task on this step", "already_assigned")
        common = {"role": ADDED, "position": task["position"], "origin_id": task["id"], "added_by": self.actor.user_id}
        if position == "before":
            added = self._new_task(other, TASK_PENDING, **common)
            self._update_task(task, state=TASK_WAITING, follows_id=added["id"])
        elif position == "after":
            self._new_task(other, TASK_WAITING, follows_id=task["id"], **common)
        else:
            self._new_task(other, TASK_PENDING, **common)
        self._log("add_approver", comment, task["step_name"], user=username, position=position)

    def remove_approver(self, username: str, comment: str | None) -> None:
        if self.status != PENDING or self.instance is None or self.instance["state"] != RUNNING:
            raise ActionConflict(f"cannot remove an approver: the record is {self.status}", "wrong_state")
        found = self.resolver.user_by_name(username)
        tasks = self._step_tasks()
        removable = [
            t for t in tasks
            if found is not None and t["assignee_id"] == found["id"] and t["role"] == ADDED and t["state"] in (TASK_PENDING, TASK_WAITING)
            and (t["added_by"] == self.actor.user_id or self.actor.is_admin)
        ]
        if not removable:
            raise ActionInvalid(f"cannot remove {username}: only an approver you added who has not acted yet can be removed", "not_removable")
        for task in removable:
            self._update_task(task, state=TASK_CANCELLED)
        self._log("remove_approver", comment, self.instance["step_name"], user=username)
        self._settle_step()

    def urge(self, comment: str | None) -> None:
        inst = self.instance
        if inst is None or inst["state"] != RUNNING or self.status != PENDING:
            raise ActionConflict(f"cannot urge: the record is {self.status or 'not under approval'}", "wrong_state")
        if not self.actor.is_admin and self.actor.user_id != inst["initiator_id"]:
            raise ActionRefused("only the person who submitted it may urge its approvers", "not_initiator")
        last = inst["last_urged_at"]
        if last is not None and self.now < to_utc(last) + URGE_INTERVAL:
            again = (to_utc(last) + URGE_INTERVAL).strftime("%H:%M UTC")
            raise ActionConflict(f"the approvers were urged a moment ago; you can urge again after {again}", "urged_recently")
        waiting = [t["assignee_id"] for t in self._step_tasks() if t["state"] == TASK_PENDING]
        self._update_instance(last_urged_at=self.now)
        self._log("urge", comment, inst["step_name"], users=[self._username(u) for u in waiting])
        self._notify(waiting, "urge", comment)

    def comment(self, comment: str | None) -> None:
        self._require_involved("comment")
        self._log("comment", comment, self.instance["step_name"] if self.instance else None)

    def copy_to(self, username: str, comment: str | None) -> None:
        self._require_involved("cc")
        if self.instance is None:
            raise ActionConflict("cannot cc: the record was never submitted", "wrong_state")
        other = self._other_user(username, "cc")
        self._new_task(other, "unread", kind="cc")
        self._log("cc", comment, self.instance["step_name"], user=username)
        self._notify([other], "cc")

    # --- timers

    def timer(self, kind: str, task_id: int) -> str:
        """Remind, escalate or time out the task, if it still waits for its assignee."""
        inst = self.instance
        task = next((t for t in self._tasks(id=task_id)), None)
        if task is None or inst is None or inst["id"] != task["instance_id"] or inst["state"] != RUNNING or task["state"] != TASK_PENDING:
            return "obsolete"
        self.approval = restore(inst["definition"])
        if kind == "remind":
            return self._remind(task)
        if kind == "escalate":
            return self._escalate(task)
        return self._time_out(task)

    def _remind(self, task: dict[str, Any]) -> str:
        approval = self.approval
        assert approval is not None
        count = task["remind_count"] + 1
        self._update_task(task, remind_count=count)
        self._log("remind", step=task["step_name"], user_id=None, on_behalf_of=task["assignee_id"], count=count)
        self._notify([task["assignee_id"]], "remind")
        if approval.remind_every is not None and (approval.remind_max is None or count < approval.remind_max):
            due = self.now + timedelta(seconds=approval.remind_every.seconds)
            self.conn.execute(self.tables["fw_job"].insert().values(kind="remind", task_id=task["id"], due_at=due))
        return "reminded"

    def _escalate(self, task: dict[str, Any]) -> str:
        """Hand the task to the escalation rule's first person who has no task on the step yet."""
        approval = self.approval
        assert approval is not None
        rules = (approval.escalate_to,) if approval.escalate_to is not None else ()
        where = Resolution(self.entity, self.record, self._running()["initiator_id"], approver_id=task["assignee_id"])
        busy = {t["assignee_id"] for t in self._step_tasks() if t["state"] in OPEN_TASK_STATES}
        targets = [u for u in self.resolver.resolve(rules, where) or self.resolver.admins() if u not in busy]
        if not targets:
            self._log("escalate", step=task["step_name"], user_id=None, on_behalf_of=task["assignee_id"], failed="nobody to escalate to")
            return "nobody"
        self._update_task(task, state=TASK_TRANSFERRED, decided_at=self.now)
        self._successor(task, targets[0])
        self._log("escalate", step=task["step_name"], user_id=None, on_behalf_of=task["assignee_id"], to=self._username(targets[0]))
        self._notify([targets[0]], "escalated")
        return "escalated"

    def _time_out(self, task: dict[str, Any]) -> str:
        approval = self.approval
        assert approval is not None
        action = approval.timeout_action or "escalate"
        if action == "escalate":
            return self._escalate(task)
        verdict = TASK_APPROVED if action == "approve" else TASK_REJECTED
        self._update_task(task, state=verdict, decided_at=self.now, comment="timed out")
        self._log("timeout", step=task["step_name"], user_id=None, on_behalf_of=task["assignee_id"], decision=verdict)
        self._settle_step()
        return f"timed out: {verdict}"

    def _involved(self) -> bool:
        """The actor is an admin, the record's creator, the initiator or has a task in the run."""
        if self.actor.is_admin or self.actor.user_id == self.record.get("created_by"):
            return True
        inst = self.instance
        return inst is not None and (inst["initiator_id"] == self.actor.user_id or bool(self._tasks(instance_id=inst["id"], assignee_id=self.actor.user_id)))

    def _require_involved(self, action: str) -> None:
        if not self._involved():
            raise ActionRefused(f"only people taking part in this {self.entity}'s approval may {action}", "not_involved")


def _given(user: str | None, action: str) -> str:
    if not user or not str(user).strip():
        raise ActionInvalid(f"{action} needs 'user': the username of the other person", "user_required")
    return str(user).strip()


def _check_comment(action: str, comment: str | None, rule: str) -> None:
    if rule == "required" and not comment:
        raise ActionInvalid(f"a comment is required to {action}: say why", "comment_required")
    if rule == "none" and comment:
        raise ActionInvalid(f"{action} takes no comment", "comment_not_allowed")


def _title(app: App, entity: str, record: Mapping[str, Any]) -> str:
    ent = app.entities.get(entity)
    field = ent.title_field if ent is not None else None
    value = record.get(field) if field else None
    return str(value) if value else f"{entity} {record.get('id')}"
