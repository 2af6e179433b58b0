"""The expenses deployment of the import/export tests and helpers writing CSV and XLSX files."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner, Result
from web_login import make_user, token_for, with_token

from formwork.cli import cli
from formwork.metadata import compile_project
from formwork.metadata.project import load_project
from formwork.storage import make_engine, migrate
from formwork.web.app import build_runtime, create_app
from formwork.web.runtime import Runtime

FILES = {
    "formwork.yaml": """
        name: expenses
        locales: [en, zh]
        default_locale: en
        metadata: [metadata]
        database: ${DATABASE_URL}
        """,
    "metadata/expense.yaml": """
        kind: entity
        name: expense
        label: {en: Expense, zh: 报销}
        title_field: title
        fields:
          title: {type: string, required: true, max_length: 40, label: {en: Title, zh: 标题}}
          amount: {type: decimal, digits: [12, 2], min: 0, required: true, label: {en: Amount, zh: 金额}}
          department: {type: link, to: department, label: {en: Department, zh: 部门}}
          spent_on: {type: date, label: {en: Spent on, zh: 日期}}
          category:
            type: choice
            label: {en: Category, zh: 类别}
            options:
              - {value: travel, label: {en: Travel, zh: 差旅}}
              - {value: meals, label: {en: Meals, zh: 餐饮}}
          paid: {type: boolean, default: false, label: {en: Paid, zh: 已付}}
          owner: {type: link, to: user, label: {en: Owner, zh: 报销人}}
          note: {type: text}
        """,
}

DEPARTMENTS = ("Sales", "R&D", "财务部")


class Deployment:
    """The migrated deployment at ``root`` on ``db_url``, with helpers to run and count."""

    def __init__(self, root: Path, db_url: str):
        self.root = root
        self.db_url = db_url
        self.project = load_project(root, environ={"DATABASE_URL": db_url})
        self.app_model = compile_project(self.project)
        self.engine = make_engine(db_url)
        migrate(self.engine, self.app_model, allow_destructive=False)
        self.runtime: Runtime = build_runtime(self.project, self.app_model, self.engine)
        self.records = self.runtime.records

    def cli(self, *args: str) -> Result:
        """``formwork ARGS --project ROOT`` with the test database."""
        runner = CliRunner()
        return runner.invoke(cli, [*args, "--project", str(self.root)], env={"DATABASE_URL": self.db_url}, catch_exceptions=False)

    def flask_app(self) -> Any:
        """The deployment served by ``create_app`` (import and export included)."""
        return create_app(self.project, app_model=self.app_model, engine=self.engine)

    def api_client(self, username: str = "transfer_admin", roles: tuple[str, ...] = ()) -> Any:
        """A test client of a new app calling with the bearer token of a new user (an admin
        unless ``roles`` are given)."""
        app = self.flask_app()
        runtime = app.extensions["formwork"]
        make_user(runtime, username, roles=roles, admin=not roles)
        return with_token(app.test_client(), token_for(runtime, username))

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())

    def rows(self, table: str, order: str = "id") -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}")).mappings()]

    def department_ids(self) -> dict[str, int]:
        return {row["name"]: row["id"] for row in self.rows("fw_department")}


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def csv_file(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    """``lines`` joined into a CSV file at ``path``."""
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def xlsx_file(path: Path, rows: list[list[Any]]) -> Path:
    """``rows`` as the first worksheet of an XLSX workbook at ``path``."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path
