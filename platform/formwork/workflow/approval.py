"""The ``approval`` notation compiled onto the state machine, and the rules of a step.

An approval's record moves through the approval statuses (draft, pending, approved,
rejected, withdrawn) by the transitions of ``approval_machine``; while it is pending, the
steps decide when it moves on. ``step_outcome`` is the one place that says whether a step
is passed, rejected or still open, for every mode (any, all with an optional pass ratio,
sequence) and with approvers added along the way.

``snapshot`` and ``restore`` turn an approval into JSON and back: a flow instance keeps
the definition it started with, so changing the metadata never breaks a record in flight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from formwork.metadata.model import (
    APPROVAL_STATUSES,
    COMMENT_REQUIRED_DEFAULT,
    Approval,
    ApprovalStep,
    ApproverRule,
    Duration,
)
from formwork.workflow.machine import Machine, MachineTransition

DRAFT, PENDING, APPROVED, REJECTED, WITHDRAWN = APPROVAL_STATUSES

# Task states. ``skipped`` is an approval given by the rules (the approver is the initiator
# or approved earlier); it counts as approved.
TASK_PENDING = "pending"
TASK_WAITING = "waiting"
TASK_APPROVED = "approved"
TASK_REJECTED = "rejected"
TASK_SKIPPED = "skipped"
TASK_TRANSFERRED = "transferred"
TASK_CANCELLED = "cancelled"
TASK_DELEGATED = "delegated"
OPEN_TASK_STATES = (TASK_PENDING, TASK_WAITING, TASK_DELEGATED)
APPROVING_STATES = (TASK_APPROVED, TASK_SKIPPED)

# Task roles: ``group`` tasks follow the step's mode; ``added`` ones (加签) must each approve;
# ``delegate`` ones (委派) give an opinion and hand the task back.
GROUP, ADDED, DELEGATE = "group", "added", "delegate"

STEP_PASSED, STEP_REJECTED, STEP_OPEN = "passed", "rejected", "open"


def approval_machine(approval: Approval) -> Machine:
    """The state machine an approval compiles onto.

    Submitting is allowed from draft and withdrawn, and from rejected unless a rejection
    ends the flow for good (``on_reject: end``)."""
    resubmit_from = (DRAFT, WITHDRAWN) if approval.on_reject == "end" else (DRAFT, WITHDRAWN, REJECTED)
    return Machine(
        name=approval.name,
        entity=approval.entity,
        states=APPROVAL_STATUSES,
        initial=DRAFT,
        transitions=(
            MachineTransition("submit", resubmit_from, PENDING),
            MachineTransition("approve", (PENDING,), APPROVED),
            MachineTransition("reject", (PENDING,), REJECTED),
            MachineTransition("withdraw", (PENDING,), WITHDRAWN),
            MachineTransition("return", (PENDING,), DRAFT),
        ),
        finals=(APPROVED,) if approval.on_reject != "end" else (APPROVED, REJECTED),
    )


def step_outcome(step: ApprovalStep, tasks: Iterable[Mapping[str, Any]]) -> str:
    """``passed``, ``rejected`` or ``open`` for a step, from its approve tasks
    (each with ``role`` and ``state``).

    - any: the first approval passes the group, the first rejection rejects the step;
    - all: everyone must approve and one rejection settles it; with ``pass_ratio`` the
      step passes once that share approved and is rejected once it can no longer get there;
    - sequence: everyone, in order (the order is kept by activating tasks one by one).
    Approvers added along the way (加签) must each approve as well."""
    counted = [t for t in tasks if t["role"] != DELEGATE and t["state"] not in (TASK_TRANSFERRED, TASK_CANCELLED)]
    group = [t for t in counted if t["role"] == GROUP]
    added = [t for t in counted if t["role"] == ADDED]
    approved = sum(1 for t in group if t["state"] in APPROVING_STATES)
    rejected = sum(1 for t in group if t["state"] == TASK_REJECTED)
    if any(t["state"] == TASK_REJECTED for t in added):
        return STEP_REJECTED
    if step.mode == "all" and step.pass_ratio is not None and group:
        needed = math.ceil(step.pass_ratio * len(group) - 1e-9)
        if len(group) - rejected < needed:
            return STEP_REJECTED
        group_done = approved >= needed
    elif rejected:
        return STEP_REJECTED
    elif step.mode == "any":
        group_done = approved > 0 or not group
    else:
        group_done = approved == len(group)
    if group_done and all(t["state"] in APPROVING_STATES for t in added):
        return STEP_PASSED
    return STEP_OPEN


# ----------------------------------------------------------------- snapshots


def snapshot(approval: Approval) -> dict[str, Any]:
    """The approval as JSON-ready data (without source places)."""
    return _without_places(asdict(approval))


def restore(data: Mapping[str, Any]) -> Approval:
    """The approval ``snapshot`` made."""
    return Approval(
        name=data["name"],
        entity=data["entity"],
        steps=tuple(_step(s) for s in data["steps"]),
        label=dict(data.get("label") or {}),
        cc=tuple(_rule(r) for r in data.get("cc") or ()),
        cc_when=data.get("cc_when", "finish"),
        on_reject=data.get("on_reject", "initiator"),
        on_no_approver=data.get("on_no_approver", "admins"),
        skip_initiator=data.get("skip_initiator", True),
        skip_repeated=data.get("skip_repeated", True),
        remind_after=_duration(data.get("remind_after")),
        remind_every=_duration(data.get("remind_every")),
        remind_max=data.get("remind_max"),
        escalate_after=_duration(data.get("escalate_after")),
        escalate_to=_rule(data["escalate_to"]) if data.get("escalate_to") else None,
        timeout_after=_duration(data.get("timeout_after")),
        timeout_action=data.get("timeout_action"),
        # runs started before the key existed keep the rule of their time
        comment_required=tuple(data.get("comment_required", COMMENT_REQUIRED_DEFAULT)),
    )


def _without_places(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_places(v) for k, v in value.items() if k != "place"}
    if isinstance(value, list | tuple):
        return [_without_places(v) for v in value]
    return value


def _rule(data: Mapping[str, Any]) -> ApproverRule:
    return ApproverRule(data["kind"], data["value"], data.get("levels"), data.get("until_role"))


def _step(data: Mapping[str, Any]) -> ApprovalStep:
    return ApprovalStep(
        name=data["name"],
        approvers=tuple(_rule(r) for r in data.get("approvers") or ()),
        label=dict(data.get("label") or {}),
        when=data.get("when"),
        mode=data.get("mode", "any"),
        pass_ratio=data.get("pass_ratio"),
        editable=tuple(data.get("editable") or ()),
        hidden=tuple(data.get("hidden") or ()),
        on_no_approver=data.get("on_no_approver"),
        comment_required=tuple(data["comment_required"]) if data.get("comment_required") is not None else None,
    )


def _duration(data: Mapping[str, Any] | None) -> Duration | None:
    return Duration(data["seconds"], data["text"]) if data else None
