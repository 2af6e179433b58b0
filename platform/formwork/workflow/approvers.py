"""Who approves: resolving approver rules to active users, in a stable order.

A rule names a role (its members, and members of roles that inherit it), a user, a user
field of the record, the manager of a user (their ``manager``, else the manager of their
department, walking up the department tree past themselves), a manager chain (N levels
up, or up to the first manager holding a role), the head of a department (a department
field of the record, or a department's name or code), or a plugin resolver for the rest.
Inactive users never approve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import ADMIN_ROLE, App, ApproverRule
from formwork.plugins import HookRegistry
from formwork.records import Actor, HookContext, RecordService
from formwork.records.hooks import call_hook

# How far up a department tree or manager chain we walk before giving up (a cycle in data).
MAX_LEVELS = 50


@dataclass(frozen=True)
class Resolution:
    """What a rule is resolved against: the record, its flow's initiator and, for an
    escalation, the approver being escalated from."""

    entity: str
    record: Mapping[str, Any]
    initiator_id: int | None
    approver_id: int | None = None


class ApproverResolver:
    """Resolves approver rules inside one transaction (``conn``)."""

    def __init__(self, conn: sa.Connection, app: App, records: RecordService, hooks: HookRegistry | None) -> None:
        self.conn = conn
        self.app = app
        self.records = records
        self.hooks = hooks
        tables = records.schema.metadata.tables
        self.users = tables["fw_user"]
        self.departments = tables["fw_department"]
        self.user_roles = tables["fw_user_role"]

    def resolve(self, rules: Iterable[ApproverRule], where: Resolution) -> list[int]:
        """The active users the rules name, each once, in the order the rules name them."""
        found: list[int] = []
        for rule in rules:
            for user_id in self._rule(rule, where):
                if user_id not in found:
                    found.append(user_id)
        active = self.active(found)
        return [u for u in found if u in active]

    def admins(self) -> list[int]:
        """The active members of the admin role."""
        return self._role_members(ADMIN_ROLE)

    def active(self, user_ids: Iterable[int]) -> set[int]:
        """Those of ``user_ids`` that are active users."""
        ids = list(user_ids)
        if not ids:
            return set()
        rows = self.conn.execute(sa.select(self.users.c.id).where(self.users.c.id.in_(ids), sa.or_(self.users.c.active.is_(None), self.users.c.active == sa.true())))
        return {r.id for r in rows}

    def user_by_name(self, username: str) -> Mapping[str, Any] | None:
        """The user row with ``username`` (active or not), or None."""
        return self.conn.execute(sa.select(self.users).where(self.users.c.username == username)).mappings().first()

    def manager_of(self, user_id: int | None) -> int | None:
        """The user's manager: their own ``manager``, else the manager of the nearest
        department up the tree whose manager is someone else."""
        if user_id is None:
            return None
        user = self.conn.execute(sa.select(self.users.c.manager, self.users.c.department).where(self.users.c.id == user_id)).first()
        if user is None:
            return None
        if user.manager is not None and user.manager != user_id:
            return int(user.manager)
        department = user.department
        for _ in range(MAX_LEVELS):
            if department is None:
                return None
            row = self.conn.execute(sa.select(self.departments.c.manager, self.departments.c.parent).where(self.departments.c.id == department)).first()
            if row is None:
                return None
            if row.manager is not None and row.manager != user_id:
                return int(row.manager)
            department = row.parent
        return None

    def holds_role(self, user_id: int, role: str) -> bool:
        """True when the user has ``role`` or a role that inherits it."""
        names = self._roles_including(role)
        query = sa.select(self.user_roles.c.id).where(self.user_roles.c.user_id == user_id, self.user_roles.c.role.in_(names))
        return self.conn.execute(query).first() is not None

    # ------------------------------------------------------------- one rule

    def _rule(self, rule: ApproverRule, where: Resolution) -> list[int]:
        kind = rule.kind
        if kind == "role":
            return self._role_members(rule.value)
        if kind == "user":
            user = self.user_by_name(rule.value)
            return [int(user["id"])] if user is not None else []
        if kind == "field":
            value = self._user_of(rule.value, where)
            return [value] if value is not None else []
        if kind == "manager_of":
            manager = self.manager_of(self._user_of(rule.value, where))
            return [manager] if manager is not None else []
        if kind == "manager_chain":
            return self._chain(self._user_of(rule.value, where), rule)
        if kind == "department_head":
            return self._department_head(rule.value, where)
        if kind == "plugin":
            return self._plugin(rule.value, where)
        raise ValueError(f"unknown approver rule kind {kind!r}")

    def _user_of(self, name: str, where: Resolution) -> int | None:
        """The user a rule's field names: in an escalation ``approver`` is the approver
        being escalated from; otherwise a user link of the record."""
        if name == "approver" and where.approver_id is not None:
            return where.approver_id
        value = where.record.get(name)
        if isinstance(value, Mapping):
            value = value.get("id")
        return int(value) if value is not None else None

    def _role_members(self, role: str) -> list[int]:
        names = self._roles_including(role)
        query = (
            sa.select(self.user_roles.c.user_id)
            .where(self.user_roles.c.role.in_(names))
            .distinct()
            .order_by(self.user_roles.c.user_id)
        )
        return [int(r.user_id) for r in self.conn.execute(query)]

    def _roles_including(self, role: str) -> list[str]:
        """``role`` and every role that inherits it, directly or through others."""
        found = {role}
        changed = True
        while changed:
            changed = False
            for other in self.app.roles.values():
                if other.name not in found and found.intersection(other.inherits):
                    found.add(other.name)
                    changed = True
        return sorted(found)

    def _chain(self, start: int | None, rule: ApproverRule) -> list[int]:
        """Managers going up from ``start``: ``levels`` of them, or up to and including the
        first holding ``until_role`` (the whole chain when nobody holds it)."""
        chain: list[int] = []
        current = start
        limit = rule.levels if rule.levels is not None else MAX_LEVELS
        while len(chain) < limit:
            current = self.manager_of(current)
            if current is None or current in chain or current == start:
                break
            chain.append(current)
            if rule.until_role and self.holds_role(current, rule.until_role):
                break
        return chain

    def _department_head(self, value: str, where: Resolution) -> list[int]:
        entity = self.app.entities.get(where.entity)
        field = entity.fields.get(value) if entity is not None else None
        if field is not None and field.type == "link":
            department = where.record.get(value)
        else:
            table = self.departments
            row = self.conn.execute(sa.select(table.c.id).where(sa.or_(table.c.name == value, table.c.code == value))).first()
            department = row.id if row is not None else None
        if department is None:
            return []
        manager = self.conn.execute(sa.select(self.departments.c.manager).where(self.departments.c.id == department)).scalar()
        return [int(manager)] if manager is not None else []

    def _plugin(self, hook: str, where: Resolution) -> list[int]:
        """Ask a plugin: it gets the record and returns user ids or usernames."""
        ctx = HookContext(Actor.system(), self.app, "workflow", None, self.records, where.entity)
        answer = call_hook(self.hooks, hook, dict(where.record), ctx) or []
        ids: list[int] = []
        for item in answer:
            if isinstance(item, int):
                ids.append(item)
                continue
            user = self.user_by_name(str(item))
            if user is not None:
                ids.append(int(user["id"]))
        return ids
