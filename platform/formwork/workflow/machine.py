"""The one state-machine engine (DESIGN.md principle 3).

A ``Machine`` is states and named transitions between them. A ``workflow`` from metadata
is a machine as written; an ``approval`` compiles onto one (``approval.approval_machine``)
whose states are the approval statuses. ``fire`` is the only place that decides whether a
transition may leave the record's current state.
"""

from __future__ import annotations

from dataclasses import dataclass

from formwork.metadata.model import Workflow
from formwork.workflow.errors import ActionConflict, ActionInvalid


@dataclass(frozen=True)
class MachineTransition:
    """A named move from any of ``sources`` to ``target``; ``roles`` empty means anyone may."""

    name: str
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...] = ()
    when: str | None = None
    comment: str = "optional"  # optional | required | none
    hook: str | None = None


@dataclass(frozen=True)
class Machine:
    """States, the initial one, the final ones and the transitions of one flow."""

    name: str
    entity: str
    states: tuple[str, ...]
    initial: str
    transitions: tuple[MachineTransition, ...]
    finals: tuple[str, ...] = ()

    def transition(self, name: str) -> MachineTransition | None:
        """The transition called ``name``, or None."""
        return next((t for t in self.transitions if t.name == name), None)

    def available(self, state: str) -> tuple[MachineTransition, ...]:
        """The transitions that may leave ``state``."""
        return tuple(t for t in self.transitions if state in t.sources)

    def fire(self, state: str, name: str) -> MachineTransition:
        """The transition ``name`` if it may leave ``state``; ``ActionInvalid`` when there is
        no such transition, ``ActionConflict`` when the record is in another state."""
        found = self.transition(name)
        if found is None:
            known = ", ".join(t.name for t in self.transitions)
            raise ActionInvalid(f"{self.name} has no action '{name}' (actions: {known})", "unknown_action")
        if state not in found.sources:
            allowed = " or ".join(found.sources)
            raise ActionConflict(f"cannot {name}: the record is {state}, and {name} applies only when it is {allowed}", "wrong_state")
        return found


def workflow_machine(workflow: Workflow) -> Machine:
    """The machine of a ``workflow`` declared in metadata, transition for transition."""
    return Machine(
        name=workflow.name,
        entity=workflow.entity,
        states=workflow.states,
        initial=workflow.initial,
        transitions=tuple(
            MachineTransition(t.name, t.from_states, t.to, t.roles, t.when, t.comment, t.hook) for t in workflow.transitions
        ),
        finals=workflow.final_states,
    )
