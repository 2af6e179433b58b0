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

import itertools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from formwork.expressions import EvalContext, SqlScope, compile_sql, parse
from formwork.metadata.model import App, Grant
from formwork.records.actor import Actor
from formwork.records.formulas import ActingUser

ROW_SCOPES = ("all", "own", "department", "department_tree")
# CTE names must differ when two rules of one statement each walk the tree.
_tree_names = itertools.count(1)

Lookup = Callable[[str, Any], dict[str, Any] | None]


def row_clause(app: App, tables: Mapping[str, sa.Table], grant: Grant, actor: Actor, table: sa.FromClause, now: datetime,
               lookup: Lookup) -> sa.ColumnElement[bool] | None:
    """The condition on ``table`` (the grant's entity, possibly aliased) that a row must meet
    under ``grant`` for ``actor``; None for ``rows: all``."""
    rule = grant.rows
    if rule == "all":
        return None
    if rule == "own":
        return table.c.created_by == actor.user_id if actor.user_id is not None else sa.false()
    if rule in ("department", "department_tree"):
        if actor.department_id is None:
            return sa.false()
        departments = _department_ids(tables, actor.department_id, rule == "department_tree")
        return _in_departments(app, tables, grant.entity, table, departments)
    context = EvalContext(user=ActingUser(actor, lookup), now=now)
    return compile_sql(parse(rule), SqlScope(app.entities, {**tables, grant.entity: table}, grant.entity, context))


def _department_ids(tables: Mapping[str, sa.Table], department_id: int, tree: bool) -> sa.ColumnElement[Any] | sa.Select[Any]:
    """The user's department id, or a select of it and every department below it."""
    if not tree:
        return sa.literal(department_id, sa.Integer)
    source = tables["department"]
    start = source.alias()
    below = source.alias()
    walk = sa.select(start.c.id).where(start.c.id == department_id).cte(f"fw_department_tree_{next(_tree_names)}", recursive=True)
    # UNION (not UNION ALL): a parent cycle typed by mistake ends instead of looping
    walk = walk.union(sa.select(below.c.id).where(below.c.parent == walk.c.id))
    return sa.select(walk.c.id)


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
