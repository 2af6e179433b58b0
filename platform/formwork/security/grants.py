"""Effective grants: which role grants a user what on an entity, inheritance included.

A role that ``inherits`` others holds their grants too, as if the user held those roles as
well. A user's roles add up: each grant stands on its own, with its own rows and field
rules (see docs/security.md for how they combine). Role names that metadata does not
define are ignored (an assignment may outlive a role removed from metadata).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from formwork.metadata.model import App, Grant

# The actions every entity has; an entity's custom actions (``actions:``) come on top.
STANDARD_ACTIONS = ("create", "read", "update", "delete", "export", "import", "report")


@dataclass(frozen=True)
class SourcedGrant:
    """A grant with where it comes from: ``role`` declares it, the user holds ``held``
    (``held`` is ``role`` itself or a role inheriting from it, at any depth)."""

    held: str
    role: str
    grant: Grant


def role_closure(app: App, roles: Iterable[str]) -> dict[str, str]:
    """Every role reached from ``roles`` through ``inherits``, mapped to the held role it was
    reached from (held roles map to themselves); unknown names are skipped, cycles are safe."""
    reached: dict[str, str] = {}
    queue = [(name, name) for name in sorted(roles) if name in app.roles]
    while queue:
        name, held = queue.pop(0)
        if name in reached:
            continue
        reached[name] = held
        queue.extend((parent, held) for parent in app.roles[name].inherits if parent in app.roles and parent not in reached)
    return reached


def grants_for(app: App, roles: Iterable[str], entity: str) -> tuple[SourcedGrant, ...]:
    """The grants on ``entity`` of every role in the closure of ``roles``, by declaring role."""
    closure = role_closure(app, roles)
    return tuple(
        SourcedGrant(held, name, app.roles[name].grants[entity])
        for name, held in sorted(closure.items())
        if entity in app.roles[name].grants
    )


def entity_actions(app: App, entity: str) -> tuple[str, ...]:
    """The actions that exist on ``entity``: the standard ones and its custom actions."""
    ent = app.entities.get(entity)
    custom = tuple(ent.actions) if ent is not None else ()
    return STANDARD_ACTIONS + tuple(a for a in custom if a not in STANDARD_ACTIONS)


def granted_actions(grants: Iterable[SourcedGrant]) -> frozenset[str]:
    """Every action any of ``grants`` allows."""
    return frozenset(action for sg in grants for action in sg.grant.actions)
