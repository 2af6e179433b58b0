"""Demo seeding: files of demo records written through RecordService, idempotently."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from formwork.metadata import compile_project
from formwork.metadata.project import Project, load_project
from formwork.plugins import load_plugins
from formwork.problems import ProblemsFound
from formwork.records import Actor, RecordQuery, RecordService
from formwork.seeding import SeedReport, seed_demo
from formwork.storage import build_schema, make_engine, migrate

METADATA = {
    "formwork.yaml": """
        name: orders
        metadata: [metadata]
        demo: [demo]
        """,
    "metadata/sales_role.yaml": "kind: role\nname: sales\n",
    "metadata/product.yaml": """
        kind: entity
        name: product
        title_field: name
        fields:
          name: {type: string, required: true, unique: true}
          price: {type: decimal, digits: [10, 2], min: 0}
        """,
    "metadata/sale.yaml": """
        kind: entity
        name: sale
        title_field: code
        fields:
          code: {type: string, required: true}
          customer: {type: link, to: user, required: true}
          lines: {type: table, entity: sale_line}
        """,
    "metadata/sale_line.yaml": """
        kind: entity
        name: sale_line
        fields:
          product: {type: link, to: product, required: true}
          quantity: {type: integer, min: 1, required: true}
        """,
}

DEMO = {
    # departments name managers that the users file creates later: set in the second pass
    "demo/10_departments.yaml": """
        entity: department
        records:
          - {name: Head office, code: HQ, manager: alice}
          - {name: Sales, code: SAL, parent: Head office, manager: bob}
        """,
    "demo/20_users.yaml": """
        entity: user
        records:
          - {username: alice, full_name: Alice Wu, department: Head office, password: wonderland, roles: [admin]}
          - {username: bob, full_name: Bob Li, department: Sales, manager: alice, roles: [sales]}
          - {username: carol, full_name: Carol Xu, department: 2, manager: dave}
          - {username: dave, full_name: Dave Ma, department: Sales}
        """,
    "demo/30_products.yaml": """
        entity: product
        records:
          - {name: Pen, price: 1.50}
          - {name: Paper, price: 4}
        """,
    "demo/40_sales.yaml": """
        entity: sale
        records:
          - code: O-1
            customer: carol
            created_by: bob
            lines:
              - {product: Pen, quantity: 10}
              - {product: Paper, quantity: 2}
        """,
}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


class Deployment:
    """A migrated deployment with the parts seed_demo takes."""

    def __init__(self, root: Path, db_url: str):
        self.project: Project = load_project(root, environ={"DATABASE_URL": db_url})
        self.app = compile_project(self.project)
        self.engine = make_engine(db_url)
        migrate(self.engine, self.app, allow_destructive=False)
        self.schema = build_schema(self.app)
        hooks = load_plugins(self.project.plugin_dirs, self.project.display)
        self.records = RecordService(self.app, self.schema, self.engine, hooks)

    def seed(self) -> SeedReport:
        return seed_demo(self.project, self.records)

    def rows(self, entity: str) -> list[dict]:
        return self.records.list(entity, Actor.system(), RecordQuery(sort=("id",)))

    def by(self, entity: str, key: str) -> dict[str, dict]:
        return {row[key]: row for row in self.rows(entity)}

    def counts(self) -> dict[str, int]:
        return {name: self.records.count(name, Actor.system(), RecordQuery()) for name in ("department", "user", "product", "sale")}


@pytest.fixture
def deployment(tmp_path: Path, db_url: str):
    write(tmp_path, METADATA | DEMO)
    made = Deployment(tmp_path, db_url)
    yield made
    made.engine.dispose()


def test_seed_writes_every_file_and_links_cycles_in_a_second_pass(deployment: Deployment) -> None:
    report = deployment.seed()
    assert report.created == {"department": 2, "user": 4, "product": 2, "sale": 1}
    assert report.links_set_later == 3
    users = deployment.by("user", "username")
    departments = deployment.by("department", "code")
    assert departments["HQ"]["manager"] == users["alice"]["id"]
    assert departments["SAL"]["manager"] == users["bob"]["id"]
    assert departments["SAL"]["parent"] == departments["HQ"]["id"]
    assert users["carol"]["manager"] == users["dave"]["id"]
    assert users["carol"]["department"] == 2 and users["bob"]["manager"] == users["alice"]["id"]
    [listed] = deployment.rows("sale")
    sale = deployment.records.get("sale", listed["id"], Actor.system())
    products = deployment.by("product", "name")
    assert sale["customer"] == users["carol"]["id"]
    assert [(line["product"], line["quantity"]) for line in sale["lines"]] == [(products["Pen"]["id"], 10), (products["Paper"]["id"], 2)]
    with deployment.engine.connect() as conn:
        hashes = dict(conn.execute(sa.text("SELECT username, password_hash FROM fw_user")).all())
        roles = sorted(conn.execute(sa.text("SELECT u.username, r.role FROM fw_user_role r JOIN fw_user u ON u.id = r.user_id")).all())
    assert hashes["alice"].startswith("scrypt:") and check_password_hash(hashes["alice"], "wonderland")
    assert hashes["bob"] is None
    assert [tuple(r) for r in roles] == [("alice", "admin"), ("bob", "sales")]


def test_seeding_twice_adds_nothing(deployment: Deployment) -> None:
    deployment.seed()
    before = deployment.counts()
    again = deployment.seed()
    assert again.total_created == 0 and again.links_set_later == 0
    assert [f.skipped for f in again.files] == [f"{e} already has records" for e in ("department", "user", "product", "sale")]
    assert deployment.counts() == before


def test_unknown_field_entity_and_role_are_reported_before_anything_is_written(tmp_path: Path, db_url: str) -> None:
    write(tmp_path, METADATA | DEMO)
    write(tmp_path, {
        "demo/30_products.yaml": "entity: product\nrecords:\n  - {name: Pen, colour: blue}\n",
        "demo/50_more.yaml": "entity: prodcut\nrecords: []\n",
        "demo/60_users.yaml": "entity: user\nrecords:\n  - {username: erin, roles: [saels]}\n",
    })
    deployment = Deployment(tmp_path, db_url)
    with pytest.raises(ProblemsFound) as raised:
        deployment.seed()
    shown = [p.format() for p in raised.value.problems]
    assert any(line.startswith("demo/30_products.yaml:3: records[0].colour: [FW-E081]") for line in shown), shown
    assert any("demo/50_more.yaml:1: entity: [FW-E081] unknown entity 'prodcut'" in line and "product" in line for line in shown), shown
    assert any("unknown role 'saels'" in line and "sales" in line for line in shown), shown
    assert deployment.counts() == {"department": 0, "user": 0, "product": 0, "sale": 0}
    deployment.engine.dispose()


def test_unresolvable_links_are_reported_before_anything_is_written(tmp_path: Path, db_url: str) -> None:
    write(tmp_path, METADATA | DEMO)
    write(tmp_path, {
        "demo/40_sales.yaml": "entity: sale\nrecords:\n  - {code: O-1, customer: zoe, lines: [{product: Pens, quantity: 1}]}\n",
        # a required link cannot wait for the second pass
        "demo/05_early.yaml": "entity: sale\nrecords:\n  - {code: O-0, customer: alice}\n",
    })
    deployment = Deployment(tmp_path, db_url)
    with pytest.raises(ProblemsFound) as raised:
        deployment.seed()
    shown = [p.format() for p in raised.value.problems]
    assert any("demo/40_sales.yaml:3: records[0].customer: [FW-E082] no user named 'zoe'" in line for line in shown), shown
    assert any("records[0].lines[0].product: [FW-E082] no product named 'Pens'" in line and "'Pen'" in line for line in shown), shown
    assert any("demo/05_early.yaml:3: records[0].customer: [FW-E082] user 'alice' is created later" in line for line in shown), shown
    assert deployment.counts() == {"department": 0, "user": 0, "product": 0, "sale": 0}
    deployment.engine.dispose()


def test_a_record_is_written_as_its_created_by_user(deployment: Deployment) -> None:
    deployment.seed()
    users = deployment.by("user", "username")
    (sale,) = deployment.rows("sale")
    assert sale["created_by"] == users["bob"]["id"]
    assert all(row["created_by"] is None for row in deployment.rows("product"))  # no created_by: the system
    audit = deployment.schema.metadata.tables["fw_audit"]
    with deployment.engine.connect() as conn:
        who = conn.execute(sa.select(audit.c.user_id, audit.c.channel).where(audit.c.entity == "sale")).all()
    assert [(row.user_id, row.channel) for row in who] == [(users["bob"]["id"], "seed")]


def test_an_unknown_or_later_created_by_user_is_reported_before_anything_is_written(tmp_path: Path, db_url: str) -> None:
    write(tmp_path, METADATA | DEMO)
    write(tmp_path, {
        "demo/30_products.yaml": "entity: product\nrecords:\n  - {name: Pen, created_by: bobb}\n  - {name: Ink, created_by: 7}\n",
        "demo/15_early.yaml": "entity: product\nrecords:\n  - {name: Paper, created_by: dave}\n",
    })
    deployment = Deployment(tmp_path, db_url)
    with pytest.raises(ProblemsFound) as raised:
        deployment.seed()
    shown = [p.format() for p in raised.value.problems]
    assert any("demo/30_products.yaml:4: records[1].created_by: [FW-E080] 'created_by' takes the username" in line for line in shown), shown
    write(tmp_path, {"demo/30_products.yaml": "entity: product\nrecords:\n  - {name: Pen, created_by: bobb}\n"})
    with pytest.raises(ProblemsFound) as raised:
        deployment.seed()
    shown = [p.format() for p in raised.value.problems]
    assert any("demo/15_early.yaml:3: records[0].created_by: [FW-E082] no user named 'dave' exists before this record — create the user in an earlier file" in line
               for line in shown), shown
    assert any("demo/30_products.yaml:3: records[0].created_by: [FW-E082] no user named 'bobb' exists before this record — did you mean 'bob'?" in line
               for line in shown), shown
    assert deployment.counts() == {"department": 0, "user": 0, "product": 0, "sale": 0}
    deployment.engine.dispose()


def test_a_refused_record_rolls_back_its_file_and_stops(tmp_path: Path, db_url: str) -> None:
    write(tmp_path, METADATA | DEMO)
    write(tmp_path, {"demo/30_products.yaml": "entity: product\nrecords:\n  - {name: Pen, price: 1}\n  - {name: Ink, price: -2}\n  - {name: Paper}\n"})
    deployment = Deployment(tmp_path, db_url)
    with pytest.raises(ProblemsFound) as raised:
        deployment.seed()
    [problem] = raised.value.problems
    assert problem.format().startswith("demo/30_products.yaml:4: records[1].price: [FW-E083] product not created:")
    counts = deployment.counts()
    assert counts == {"department": 2, "user": 4, "product": 0, "sale": 0}, "earlier files stay, the refused file is rolled back"
    deployment.engine.dispose()


def test_seeding_the_example_deployment(example_project: Path, db_url: str) -> None:
    assert any((example_project / "demo").glob("*.yaml")), "the example deployment has demo files"
    deployment = Deployment(example_project, db_url)
    report = deployment.seed()
    assert report.created.get("user", 0) >= 3 and report.created.get("department", 0) >= 2
    assert set(report.created) - {"user", "department"}, "business records are seeded too"
    before = {name: deployment.records.count(name, Actor.system(), RecordQuery()) for name in deployment.app.entities if not deployment.app.entities[name].is_child}
    again = deployment.seed()
    assert again.total_created == 0
    after = {name: deployment.records.count(name, Actor.system(), RecordQuery()) for name in before}
    assert after == before
    deployment.engine.dispose()
