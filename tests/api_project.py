"""A small purchasing deployment served by the REST API, for the tests/test_api_*.py files.

``api`` builds it in a temporary folder, migrates it on the test database (a SQLite file
and PostgreSQL) and serves it with ``create_app``; the API is registered when the app
factory does not do it yet.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import sqlalchemy as sa
from web_login import make_user, token_for, with_token

from formwork.metadata import compile_project
from formwork.metadata.project import load_project
from formwork.records import Actor
from formwork.storage import make_engine, migrate
from formwork.web import Runtime, create_app
from formwork.web.api import BLUEPRINT_NAME, register_api

FILES = {
    "formwork.yaml": """
        name: shop
        label: Corner Shop
        metadata: [metadata]
        plugins: [plugins]
        """,
    "metadata/product.yaml": """
        kind: entity
        name: product
        title_field: name
        fields:
          name: {type: string, required: true, max_length: 60, unique: true}
          price: {type: decimal, digits: [10, 2], min: 0}
          active: {type: boolean, default: true}
        """,
    "metadata/purchase_request.yaml": """
        kind: entity
        name: purchase_request
        label: Purchase request
        title_field: title
        number: {field: number, pattern: "PR-{#####}"}
        fields:
          number: {type: string, max_length: 20, unique: true}
          title: {type: string, required: true, max_length: 40}
          department: {type: link, to: department}
          amount: {type: decimal, digits: [12, 2], min: 0, max: 1000000}
          currency: {type: choice, options: [CNY, USD, EUR], default: CNY}
          needed_by: {type: date}
          urgent: {type: boolean, default: false}
          contact: {type: email}
          priority: {type: integer, min: 1, max: 5}
          notes: {type: text}
          meta: {type: json}
          lines: {type: table, entity: purchase_request_line}
          total: {type: decimal, digits: [14, 2], compute: "sum(lines.amount)"}
        hooks: {before_save: shop.check_request}
        actions:
          mark_urgent: {hook: shop.mark_urgent, label: Mark urgent}
          explode: {hook: shop.explode, label: Explode}
        """,
    "metadata/purchase_request_line.yaml": """
        kind: entity
        name: purchase_request_line
        fields:
          product: {type: link, to: product, required: true}
          quantity: {type: integer, required: true, min: 1}
          unit_price: {type: decimal, digits: [12, 2], min: 0, required: true}
          amount: {type: decimal, digits: [14, 2], compute: "quantity * unit_price"}
        """,
    "plugins/shop.py": """
        from formwork.plugins import PluginError, hook


        @hook("shop.check_request")
        def check_request(record, ctx):
            if record.get("title") == "forbidden":
                raise PluginError("this title is not allowed", field="title")
            if record.get("title") == "crash":
                raise RuntimeError("a bug in the plugin")


        @hook("shop.mark_urgent")
        def mark_urgent(record, ctx):
            if record["urgent"]:
                raise PluginError("is urgent already", field="urgent")
            ctx.service.update(ctx.entity, record["id"], {"urgent": True}, ctx.user, "plugin", None)
            return {"marked": record["number"]}


        @hook("shop.explode")
        def explode(record, ctx):
            ctx.service.update(ctx.entity, record["id"], {"urgent": True}, ctx.user, "plugin", None)
            raise RuntimeError("the action crashed half-way")
        """,
}


def write_project(root: Path) -> Path:
    """The deployment's files in ``root``."""
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\\n"), encoding="utf-8")
    return root


@dataclass
class Served:
    """The served deployment: the Flask app, its runtime and a test client."""

    app: flask.Flask
    runtime: Runtime
    engine: sa.Engine
    token: str = ""

    @property
    def client(self) -> Any:
        """A test client calling with the admin's bearer token."""
        return with_token(self.app.test_client(), self.token)

    @property
    def auth(self) -> dict[str, str]:
        """The admin's ``Authorization`` header."""
        return {"Authorization": f"Bearer {self.token}"}

    def rows(self, table: str) -> int:
        """How many rows ``table`` holds, counted in SQL."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())

    def product(self, name: str, price: str = "2.50") -> int:
        """A product created through the record service; its id."""
        return int(self.runtime.records.create("product", {"name": name, "price": price}, Actor.system(), "seed")["id"])


def serve(root: Path, db_url: str, config: dict[str, Any] | None = None) -> Served:
    """Migrate the deployment at ``root`` on ``db_url`` and serve it."""
    project = load_project(write_project(root), environ={"DATABASE_URL": db_url})
    app_model = compile_project(project)
    engine = make_engine(db_url)
    migrate(engine, app_model)
    app = create_app(project, app_model=app_model, engine=engine, config={"TESTING": True, **(config or {})})
    if BLUEPRINT_NAME not in app.blueprints:
        register_api(app)
    runtime = app.extensions["formwork"]
    make_user(runtime, "api_admin", admin=True)
    return Served(app, runtime, engine, token_for(runtime, "api_admin"))


def serving(tmp_path: Path, db_url: str) -> Iterator[Served]:
    """The purchasing deployment served on the test database, for a fixture to yield from."""
    served = serve(tmp_path / "shop", db_url)
    yield served
    served.engine.dispose()
