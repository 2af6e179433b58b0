"""A small company for the workflow tests: departments, people with roles and a purchase
request whose approval each test writes, migrated on a real SQLite file or PostgreSQL.

Org chart: HQ (manager chen, the CEO) above Sales (manager mary) and Finance (manager
fiona). eve and otto work in Sales, fred and fay in Finance (role finance), ada is the
admin, ivan has left (inactive).
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formwork.metadata import compile_project
from formwork.metadata.project import load_project
from formwork.plugins import load_plugins
from formwork.records import Actor, RecordService
from formwork.seeding import seed_demo
from formwork.storage import build_schema, make_engine, migrate
from formwork.workflow.actions import FlowEngine

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

FILES = {
    "formwork.yaml": """
        name: company
        metadata: [metadata]
        plugins: [plugins]
        demo: [demo]
        """,
    "metadata/roles.yaml": "kind: role\nname: finance\n",
    "metadata/ceo.yaml": "kind: role\nname: ceo\ninherits: [manager]\n",
    "metadata/manager.yaml": "kind: role\nname: manager\n",
    "metadata/purchase_request.yaml": """
        kind: entity
        name: purchase_request
        title_field: title
        fields:
          title: {type: string, required: true}
          amount: {type: decimal, digits: [12, 2], min: 0}
          requester: {type: link, to: user, default: $user}
          approver: {type: link, to: user}  # also the escalation rule's word for the approver
          department: {type: link, to: department, default: $user.department}
        """,
    "metadata/order.yaml": """
        kind: entity
        name: sales_order
        title_field: code
        fields:
          code: {type: string, required: true}
          total: {type: decimal, digits: [12, 2]}
          shipped_on: {type: date}
        """,
    "metadata/order_flow.yaml": """
        kind: workflow
        name: order_flow
        entity: sales_order
        states: [draft, confirmed, shipped, cancelled]
        initial: draft
        transitions:
          - {name: confirm, from: draft, to: confirmed, roles: [manager], when: "total > 0"}
          - {name: ship, from: confirmed, to: shipped, hook: test.ship}
          - {name: cancel, from: [draft, confirmed], to: cancelled, comment: required}
        """,
    "plugins/test.py": """
        import datetime as dt

        from formwork.plugins import hook


        @hook("test.ship")
        def ship(record, ctx):
            record["shipped_on"] = dt.date(2026, 11, 30)


        @hook("test.auditors")
        def auditors(record, ctx):
            return ["otto", "nobody"]
        """,
    "demo/10_departments.yaml": """
        entity: department
        records:
          - {name: HQ, code: HQ, manager: chen}
          - {name: Sales, code: SAL, parent: HQ, manager: mary}
          - {name: Finance, code: FIN, parent: HQ, manager: fiona}
        """,
    "demo/20_users.yaml": """
        entity: user
        records:
          - {username: chen, full_name: Chen, email: chen@example.com, department: HQ, roles: [ceo]}
          - {username: mary, full_name: Mary, email: mary@example.com, department: Sales, roles: [manager]}
          - {username: fiona, full_name: Fiona, email: fiona@example.com, department: Finance, roles: [manager]}
          - {username: eve, full_name: Eve, email: eve@example.com, department: Sales}
          - {username: otto, full_name: Otto, email: otto@example.com, department: Sales}
          - {username: fred, full_name: Fred, email: fred@example.com, department: Finance, roles: [finance]}
          - {username: fay, full_name: Fay, email: fay@example.com, department: Finance, roles: [finance]}
          - {username: ada, full_name: Ada, email: ada@example.com, department: HQ, roles: [admin]}
          - {username: ivan, full_name: Ivan, department: Sales, active: false}
        """,
}

PURCHASE_APPROVAL = """
    kind: approval
    name: purchase_approval
    entity: purchase_request
    steps:
      - {name: manager, approvers: {manager_of: requester}}
      - {name: finance, when: "amount > 5000", approvers: {role: finance}, mode: all}
      - {name: ceo, when: "amount > 100000", approvers: {role: ceo}}
    cc: [{field: requester}]
    on_reject: initiator
    remind: {after: 24h, every: 24h, max: 2}
    escalate: {after: 72h, to: {manager_of: approver}}
    """


class Company:
    """The migrated, seeded deployment with a ``FlowEngine`` whose clock the test moves."""

    def __init__(self, root: Path, db_url: str, approval: str = PURCHASE_APPROVAL, extra: dict[str, str] | None = None) -> None:
        files = {**FILES, "metadata/purchase_approval.yaml": approval, **(extra or {})}
        write(root, files)
        self.root = root
        self.db_url = db_url
        self.now = START
        self.project = load_project(root, environ={"DATABASE_URL": db_url})
        self.app = compile_project(self.project)
        self.engine = make_engine(db_url)
        migrate(self.engine, self.app, allow_destructive=False)
        self.schema = build_schema(self.app)
        self.hooks = load_plugins(self.project.plugin_dirs, self.project.display)
        self.records = RecordService(self.app, self.schema, self.engine, self.hooks, clock=lambda: self.now)
        seed_demo(self.project, self.records)
        self.flows = FlowEngine(self.records)
        self.tables = self.flows.tables

    def reload(self, approval: str) -> None:
        """Change the approval's metadata file and start again from it, as a redeployed
        server would (same database, migrated, not seeded again)."""
        write(self.root, {"metadata/purchase_approval.yaml": approval})
        self.app = compile_project(self.project)
        migrate(self.engine, self.app, allow_destructive=False)
        self.schema = build_schema(self.app)
        self.records = RecordService(self.app, self.schema, self.engine, self.hooks, clock=lambda: self.now)
        self.flows = FlowEngine(self.records)
        self.tables = self.flows.tables

    def advance(self, **delta: float) -> None:
        """Move the clock on."""
        self.now += timedelta(**delta)

    def user_id(self, username: str) -> int:
        users = self.tables["fw_user"]
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one())

    def actor(self, username: str) -> Actor:
        users, roles = self.tables["fw_user"], self.tables["fw_user_role"]
        with self.engine.connect() as conn:
            user = conn.execute(sa.select(users).where(users.c.username == username)).mappings().one()
            held = frozenset(r.role for r in conn.execute(sa.select(roles.c.role).where(roles.c.user_id == user["id"])))
        return Actor(user["id"], username, held, user["department"], "admin" in held)

    def create(self, username: str, entity: str = "purchase_request", **values: Any) -> dict[str, Any]:
        return self.records.create(entity, values, self.actor(username), "api")

    def act(self, username: str, record: dict[str, Any], action: str, entity: str = "purchase_request", **options: Any) -> dict[str, Any]:
        return self.flows.act(entity, record["id"], action, self.actor(username), **options).as_dict()

    def get(self, record: dict[str, Any], entity: str = "purchase_request") -> dict[str, Any]:
        return self.records.get(entity, record["id"], Actor.system())

    def status(self, record: dict[str, Any], entity: str = "purchase_request") -> str:
        return self.get(record, entity)["status"]

    def waiting(self, username: str) -> list[int]:
        """Ids of the records waiting for ``username``."""
        return [item["record_id"] for item in self.flows.inbox(self.user_id(username), "waiting")]

    def timeline(self, record: dict[str, Any], entity: str = "purchase_request") -> list[tuple[str, str | None]]:
        """(action, user) of each timeline entry."""
        return [(e["action"], e["user"]) for e in self.flows.timeline(entity, record["id"])]

    def counts(self) -> dict[str, int]:
        """Rows of every workflow table (to show nothing was written)."""
        with self.engine.connect() as conn:
            return {name: conn.execute(sa.select(sa.func.count()).select_from(self.tables[name])).scalar_one()
                    for name in ("fw_flow_instance", "fw_task", "fw_timeline", "fw_job", "fw_notification", "fw_audit")}

    def close(self) -> None:
        self.engine.dispose()


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
