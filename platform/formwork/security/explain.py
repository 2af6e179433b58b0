"""Reading the permissions: why a user may do what (``access explain``) and the role ×
entity × action table (``access matrix``) for review in a pull request."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from formwork.metadata.model import ADMIN_ROLE, App
from formwork.records import Actor
from formwork.security.grants import entity_actions, grants_for, role_closure
from formwork.security.policy import RolePolicy


@dataclass(frozen=True)
class MatrixRow:
    """One grant as a role holds it: ``via`` is the role declaring it (``role`` itself, or a
    role ``role`` inherits)."""

    role: str
    entity: str
    via: str
    actions: tuple[str, ...]
    rows: str
    hidden: tuple[str, ...]
    read_only: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"role": self.role, "entity": self.entity, "via": self.via, "actions": list(self.actions), "rows": self.rows,
                "hidden": list(self.hidden), "read_only": list(self.read_only)}


def access_matrix(app: App) -> list[MatrixRow]:
    """Every grant of every role of ``app``, inherited grants included, by role then entity.
    The built-in ``admin`` role grants everything and is listed with ``rows: all``."""
    rows: list[MatrixRow] = []
    for role in sorted(app.roles):
        if role == ADMIN_ROLE or ADMIN_ROLE in role_closure(app, [role]):
            rows += [MatrixRow(role, entity, ADMIN_ROLE, entity_actions(app, entity), "all", (), ()) for entity in sorted(app.entities)
                     if not app.entities[entity].is_child]
            continue
        for entity in sorted(app.entities):
            for sg in grants_for(app, [role], entity):
                g = sg.grant
                rows.append(MatrixRow(role, entity, sg.role, tuple(g.actions), g.rows, tuple(g.hidden), tuple(g.read_only)))
    return rows


def explain_access(app: App, policy: RolePolicy, conn: sa.Connection, tables: dict[str, sa.Table], actor: Actor, entity: str,
                   record_id: int | None = None) -> list[str]:
    """Lines saying which of the actor's roles grant what on ``entity`` and, for a record,
    whether each read grant's row rule holds for it (evaluated in SQL)."""
    lines = [f"{actor.username} holds: {', '.join(sorted(actor.roles)) or '(no roles)'}"]
    closure = role_closure(app, actor.roles)
    inherited = sorted(name for name, held in closure.items() if name != held)
    if inherited:
        lines.append("inherited: " + ", ".join(f"{name} (through {closure[name]})" for name in inherited))
    unknown = sorted(set(actor.roles) - set(app.roles))
    if unknown:
        lines.append("not defined in metadata (ignored): " + ", ".join(unknown))
    known = entity_actions(app, entity)
    if actor.is_admin:
        lines.append(f"{entity}: administrator: every action ({', '.join(known)}) on every record, every field")
        if record_id is not None:
            lines.append(_record_line(record_id, True, "administrator"))
        return lines
    grants = policy.grants(entity, actor)
    if not grants:
        lines.append(f"{entity}: no role grants anything: every action is refused (403)")
    for sg in grants:
        via = "" if sg.role == sg.held else f" (inherited through {sg.held})"
        g = sg.grant
        detail = f"  {sg.role}{via}: {', '.join(g.actions)}; rows: {g.rows}"
        if g.hidden:
            detail += f"; hidden: {', '.join(g.hidden)}"
        if g.read_only:
            detail += f"; read-only: {', '.join(g.read_only)}"
        lines.append(detail)
    allowed = policy.actions(entity, actor)
    lines.append(f"{entity}: allowed: {', '.join(a for a in known if a in allowed) or '(nothing)'}")
    refused = [a for a in known if a not in allowed]
    if refused:
        lines.append(f"{entity}: refused (403): {', '.join(refused)}")
    hidden = policy.hidden_fields(entity, actor)
    if hidden:
        lines.append(f"{entity}: hidden on some records (never filterable or sortable): {', '.join(sorted(hidden))}")
    if record_id is not None:
        lines += _record_lines(policy, conn, tables, actor, entity, record_id)
    return lines


def _record_lines(policy: RolePolicy, conn: sa.Connection, tables: dict[str, sa.Table], actor: Actor, entity: str, record_id: int) -> list[str]:
    table = tables[entity]
    if conn.execute(sa.select(table.c.id).where(table.c.id == record_id)).first() is None:
        return [f"record {record_id}: does not exist"]
    lines: list[str] = []
    reasons: list[str] = []
    for access in policy.accesses(entity, actor, table, "read"):
        holds = access.rows is None or conn.execute(sa.select(table.c.id).where(table.c.id == record_id, access.rows)).first() is not None
        rule = next((sg.grant.rows for sg in policy.grants(entity, actor) if sg.role == access.source), "all")
        lines.append(f"  {access.source}: rows {rule}: {'holds' if holds else 'does not hold'} for record {record_id}")
        if holds:
            reasons.append(access.source)
    visible = bool(reasons)
    lines.insert(0, _record_line(record_id, visible, ", ".join(reasons) if reasons else "no read grant's rows include it"))
    return lines


def _record_line(record_id: int, visible: bool, why: str) -> str:
    state = "visible" if visible else "not visible (404)"
    return f"record {record_id}: {state}: {why}"
