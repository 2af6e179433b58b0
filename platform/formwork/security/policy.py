"""``RolePolicy``: the permission policy of a deployment, from the ``role`` objects of metadata.

``RecordService`` asks it before every read and write (records/policy.py is the seam).
An admin (a user holding ``admin`` or a role inheriting it) and the system actor may do
everything. Anyone else may do an action on an entity only when one of their roles (or a
role those inherit) grants it; each grant reaches the rows of its row rule and hides or
keeps read-only the fields it lists, on those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import App
from formwork.records import Actor, PermissionDenied
from formwork.records.policy import FULL_ACCESS, Access
from formwork.records.rows import record_columns, row_dict, select_record
from formwork.security.grants import SourcedGrant, entity_actions, granted_actions, grants_for
from formwork.security.rows import actor_only, row_clause

# On this channel the workflow engine writes a transition the user was allowed to make
# (transition roles, approver tasks): the update action is the transition's.
WORKFLOW_CHANNEL = "workflow"
# Built row conditions kept per (entity, actor, table, action); cleared when full.
ACCESS_CACHE_SIZE = 2048


class RolePolicy:
    """Actions, rows and fields from the roles of ``app``; ``tables`` maps entity names to
    tables (the schema's). ``engine`` lets ``$user.<field>`` in row rules read the user's
    record (fields other than id, username, department, roles)."""

    def __init__(self, app: App, tables: Mapping[str, sa.Table], engine: sa.Engine | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.app = app
        self.tables = tables
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        self._grants: dict[tuple[frozenset[str], str], tuple[SourcedGrant, ...]] = {}
        self._accesses: dict[tuple[str, Actor, sa.Table, str], tuple[Access, ...]] = {}
        self._filters: dict[tuple[str, Actor, sa.Table, str], tuple[tuple[Access, ...], sa.ColumnElement[bool] | None]] = {}

    def grants(self, entity: str, actor: Actor) -> tuple[SourcedGrant, ...]:
        """The grants on ``entity`` of the actor's roles (inherited ones included)."""
        key = (actor.roles, entity)
        found = self._grants.get(key)
        if found is None:
            found = self._grants[key] = grants_for(self.app, actor.roles, entity)
        return found

    def actions(self, entity: str, actor: Actor) -> frozenset[str]:
        """Every action ``actor`` may do on some records of ``entity``."""
        if actor.is_admin:
            return frozenset(entity_actions(self.app, entity))
        return granted_actions(self.grants(entity, actor))

    def authorize(self, action: str, entity: str, actor: Actor, channel: str | None, record: dict[str, Any] | None) -> None:
        """Raise ``PermissionDenied`` unless one of the actor's grants allows ``action`` on ``entity``."""
        if actor.is_admin or (channel == WORKFLOW_CHANNEL and action == "update"):
            return
        if action not in self.actions(entity, actor):
            raise PermissionDenied(action, entity)

    def accesses(self, entity: str, actor: Actor, table: sa.Table, action: str) -> tuple[Access, ...]:
        """One ``Access`` per grant allowing ``action``.

        Conditions that depend only on the actor (not on the clock or on fields read from
        the user's record) are built once per actor and table and reused."""
        if actor.is_admin:
            return (FULL_ACCESS,)
        key = (entity, actor, table, action)
        found = self._accesses.get(key)
        if found is not None:
            return found
        granted = [sg for sg in self.grants(entity, actor) if action in sg.grant.actions]
        now = self.clock()
        lookup = self._lookup()
        found = tuple(
            Access(row_clause(self.app, self.tables, sg.grant, actor, table, now, lookup, sg.role), frozenset(sg.grant.hidden),
                   frozenset(sg.grant.read_only), sg.role)
            for sg in granted
        )
        if all(actor_only(sg.grant) for sg in granted):
            if len(self._accesses) >= ACCESS_CACHE_SIZE:
                self._accesses.clear()
            self._accesses[key] = found
        return found

    def row_filter(self, entity: str, actor: Actor, table: sa.Table, action: str = "read") -> sa.ColumnElement[bool] | None:
        """The OR of the row rules of the grants allowing ``action`` (false when none does)."""
        found = self.accesses(entity, actor, table, action)
        key = (entity, actor, table, action)
        kept = self._filters.get(key)
        if kept is not None and kept[0] is found:
            # the same object for the same accesses: the list stage reuses the statement built with it
            return kept[1]
        if not found:
            clause: sa.ColumnElement[bool] | None = sa.false()
        elif any(a.rows is None for a in found):
            clause = None
        else:
            clause = sa.or_(*[a.rows for a in found if a.rows is not None])
        if found is self._accesses.get(key):
            if len(self._filters) >= ACCESS_CACHE_SIZE:
                self._filters.clear()
            self._filters[key] = (found, clause)
        return clause

    def hidden_fields(self, entity: str, actor: Actor) -> frozenset[str]:
        """Fields hidden by any grant that allows reading (so hidden on some rows)."""
        if actor.is_admin:
            return frozenset()
        return frozenset(name for sg in self.grants(entity, actor) if "read" in sg.grant.actions for name in sg.grant.hidden)

    def _lookup(self) -> Callable[[str, Any], dict[str, Any] | None]:
        """Reads a record by entity and id for ``$user.<field>``, on its own connection."""

        def lookup(entity: str, record_id: Any) -> dict[str, Any] | None:
            ent = self.app.entities.get(entity)
            if ent is None or record_id is None or self.engine is None:
                return None
            table = self.tables[entity]
            with self.engine.connect() as conn:
                row = conn.execute(select_record(table, ent).where(table.c.id == record_id)).mappings().first()
            return None if row is None else row_dict(row, record_columns(ent))

        return lookup
