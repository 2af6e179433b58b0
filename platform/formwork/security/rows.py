"""Row rules of grants as SQL conditions: ``all``, ``own``, ``department``,
``department_tree`` and expressions of the expression language.

Every rule becomes a condition on the entity's table with the user's values bound as
parameters; nothing is filtered in Python. What ``department`` means for an entity:

- an entity with a ``department`` field linking to ``department``: that field is the
  user's department;
- the ``department`` entity itself: the department is the user's;
- any other entity: the record's creator (``created_by``) belongs to the user's department.

``department_tree`` is the same with the user's department and every department below it,
found by a recursive query over ``department.parent`` in the same statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from formwork.expressions import EvalContext, SqlScope, compile_sql, parse
from formwork.expressions.nodes import Call, VariablePath
from formwork.metadata.model import App, Grant
from formwork.records.actor import Actor
from formwork.records.formulas import ActingUser

# The fields of $user an Actor carries itself (see Actor.as_expression_user).
ACTOR_FIELDS = ("id", "username", "department", "roles", "is_admin")

Lookup = Callable[[str, Any], dict[str, Any] | None]


def row_clause(app: App, tables: Mapping[str, sa.Table], grant: Grant, actor: Actor, table: sa.FromClause, now: datetime,
               lookup: Lookup, role: str) -> sa.ColumnElement[bool] | None:
    """The condition on ``table`` (the grant's entity, possibly aliased) that a row must meet
    under ``grant`` of ``role`` for ``actor``; None for ``rows: all``."""
    rule = grant.rows
    if rule == "all":
        return None
    if rule == "own":
        return table.c.created_by == actor.user_id if actor.user_id is not None else sa.false()
    if rule in ("department", "department_tree"):
        if actor.department_id is None:
            return sa.false()
        departments = _department_ids(tables, actor.department_id, rule == "department_tree", role)
        return _in_departments(app, tables, grant.entity, table, departments)
    context = EvalContext(user=ActingUser(actor, lookup), now=now)
    return compile_sql(parse(rule), SqlScope(app.entities, {**tables, grant.entity: table}, grant.entity, context))


def actor_only(grant: Grant) -> bool:
    """True when the grant's condition depends on nothing but the actor's own values (id,
    username, department, roles), so the same actor always gets the same condition: not on
    the clock, not on other fields of the user's record."""
    if not grant.rows_is_expression:
        return True
    for node in parse(grant.rows).root.walk():
        if isinstance(node, VariablePath) and (node.name != "user" or (node.parts and node.parts[0] not in ACTOR_FIELDS)):
            return False
        if isinstance(node, Call) and node.function in ("today", "now"):
            return False
    return True


TREE_CACHE_SIZE = 1024
_TREES: dict[tuple[int, str, int], sa.Select[Any]] = {}


def _department_ids(tables: Mapping[str, sa.Table], department_id: int, tree: bool, role: str) -> sa.ColumnElement[Any] | sa.Select[Any]:
    """The user's department id, or a select of it and every department below it (a CTE
    named after the role: one statement may hold the trees of several roles, and a name
    that stays the same lets SQLAlchemy reuse the compiled statement)."""
    if not tree:
        return sa.literal(department_id, sa.Integer)
    key = (id(tables), role, department_id)
    found = _TREES.get(key)
    if found is not None:
        # the same CTE object: a statement holding this rule twice (an export keeps to the
        # rows both readable and exportable) names one CTE, not two that clash
        return found
    if len(_TREES) >= TREE_CACHE_SIZE:
        _TREES.clear()
    source = tables["department"]
    start = source.alias()
    below = source.alias()
    walk = sa.select(start.c.id).where(start.c.id == department_id).cte(f"fw_tree_{role}", recursive=True)
    # UNION (not UNION ALL): a parent cycle typed by mistake ends instead of looping
    walk = walk.union(sa.select(below.c.id).where(below.c.parent == walk.c.id))
    found = _TREES[key] = sa.select(walk.c.id)
    return found


def _in_departments(app: App, tables: Mapping[str, sa.Table], entity: str, table: sa.FromClause,
                    departments: sa.ColumnElement[Any] | sa.Select[Any]) -> sa.ColumnElement[bool]:
    def member(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return column.in_(departments) if isinstance(departments, sa.Select) else column == departments

    ent = app.entities[entity]
    link = ent.fields.get("department")
    if link is not None and link.type == "link" and link.to == "department":
        return member(table.c.department)
    if entity == "department":
        return member(table.c.id)
    users = tables["user"].alias()
    return table.c.created_by.in_(sa.select(users.c.id).where(member(users.c.department)))
