"""The example deployment's purchase approval, as its users live it (with the deployment's
roles enforced): 3,000 needs the manager, 20,000 also finance's countersign, 200,000 also
the CEO."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from formwork.metadata import compile_project
from formwork.metadata.project import load_project
from formwork.plugins import load_plugins
from formwork.records import Actor, RecordService
from formwork.security.policy import RolePolicy
from formwork.seeding import seed_demo
from formwork.storage import build_schema, make_engine, migrate
from formwork.workflow.actions import FlowEngine
from formwork.workflow.errors import ActionRefused

TIERS = {
    3000: ("office", "OF-A4-80", 120, "25.00"),
    20000: ("it", "EL-MON-27", 10, "2000.00"),
    200000: ("goods", "EL-LAP-T14", 25, "8000.00"),
}


class Example:
    def __init__(self, root: Path, db_url: str) -> None:
        self.project = load_project(root, environ={"DATABASE_URL": db_url})
        self.app = compile_project(self.project)
        self.engine = make_engine(db_url)
        migrate(self.engine, self.app, allow_destructive=False)
        hooks = load_plugins(self.project.plugin_dirs, self.project.display)
        schema = build_schema(self.app)
        seed_demo(self.project, RecordService(self.app, schema, self.engine, hooks))
        # the deployment's roles decide who may read and write, as in production
        self.records = RecordService(self.app, schema, self.engine, hooks, policy=RolePolicy(self.app, schema.tables, self.engine))
        self.flows = FlowEngine(self.records)

    def actor(self, username: str) -> Actor:
        users, roles = self.flows.tables["fw_user"], self.flows.tables["fw_user_role"]
        with self.engine.connect() as conn:
            user = conn.execute(sa.select(users).where(users.c.username == username)).mappings().one()
            held = frozenset(r.role for r in conn.execute(sa.select(roles.c.role).where(roles.c.user_id == user["id"])))
        return Actor(user["id"], username, held, user["department"], "admin" in held)

    def request(self, amount: int) -> dict:
        category, sku, quantity, price = TIERS[amount]
        products = self.flows.tables["product"]
        with self.engine.connect() as conn:
            product = conn.execute(sa.select(products.c.id).where(products.c.sku == sku)).scalar_one()
        values = {"title": f"Request of {amount}", "category": category, "justification": "needed for the team",
                  "lines": [{"product": product, "quantity": quantity, "unit_price": price}]}
        return self.records.create("purchase_request", values, self.actor("tang.jie"), "screen")

    def act(self, username: str, record: dict, action: str, **options: str) -> str | None:
        return self.flows.act("purchase_request", record["id"], action, self.actor(username), **options).status

    def waiting(self, username: str) -> list[int]:
        return [i["record_id"] for i in self.flows.inbox(self.actor(username).user_id or 0, "waiting")]


@pytest.fixture
def example(example_project: Path, db_url: str) -> Iterator[Example]:
    made = Example(example_project, db_url)
    yield made
    made.engine.dispose()


def test_three_tiers_of_purchase_requests(example: Example) -> None:
    small, medium, large = (example.request(amount) for amount in TIERS)
    for request in (small, medium, large):
        assert example.act("tang.jie", request, "submit") == "pending"
    assert set(example.waiting("guo.peng")) >= {small["id"], medium["id"], large["id"]}
    for request in (small, medium, large):
        example.act("guo.peng", request, "approve", comment="OK")
    assert example.records.get("purchase_request", small["id"], Actor.system())["status"] == "approved"
    finance = ("liu.fang", "chen.jing", "zhao.min")
    for person in finance:
        assert {medium["id"], large["id"]} <= set(example.waiting(person))
    for person in finance:
        example.act(person, medium, "approve")
        example.act(person, large, "approve")
    assert example.records.get("purchase_request", medium["id"], Actor.system())["status"] == "approved"
    assert example.waiting("wang.jianguo") == [large["id"]]
    assert example.act("wang.jianguo", large, "approve") == "approved"
    decided = example.records.get("purchase_request", large["id"], Actor.system())
    assert decided["decided_on"] is not None  # the deployment's own hook saw the status change


def test_seeded_drafts_are_submitted_by_their_requesters(example: Example) -> None:
    # the demo writes each request as its requester, so the people of the walkthrough act on their own drafts
    table = example.flows.tables["purchase_request"]
    with example.engine.connect() as conn:
        draft = conn.execute(sa.select(table).where(table.c.title == "客户定制办公椅备货")).mappings().one()
    assert draft["status"] == "draft"
    assert draft["created_by"] == example.actor("huang.lei").user_id
    with pytest.raises(ActionRefused) as refused:
        example.act("emily.carter", dict(draft), "submit")
    assert refused.value.code == "not_initiator"
    assert example.act("huang.lei", dict(draft), "submit") == "pending"
    assert draft["id"] in example.waiting("wu.hao")
