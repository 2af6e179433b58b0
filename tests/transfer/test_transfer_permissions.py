"""Import and export under the roles of metadata: the same policy seam as every read and write."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from transfer_deployment import FILES, Deployment, write_files

from formwork.records import Actor, PermissionDenied, RecordService
from formwork.security import RolePolicy
from formwork.security.accounts import Accounts
from formwork.transfer import Importer, export_records, open_writer
from formwork.transfer.tabular import CsvReader

ROLES = {
    "metadata/clerk.yaml": """
        kind: role
        name: clerk
        grants:
          expense: {actions: [create, read, export], rows: own, hidden: [note]}
        """,
    "metadata/loader.yaml": """
        kind: role
        name: loader
        grants:
          expense: {actions: [create, read, import]}
          department: {actions: [read]}
        """,
}


@pytest.fixture
def guarded(tmp_path: Path, db_url: str) -> Iterator[tuple[Deployment, RecordService]]:
    root = tmp_path / "guarded"
    write_files(root, {**FILES, **ROLES})
    deployment = Deployment(root, db_url)
    system = Actor.system()
    deployment.records.create("department", {"name": "Sales"}, system, "cli")
    for name in ("alice", "bob"):
        deployment.records.create("user", {"username": name}, system, "cli")
    policy = RolePolicy(deployment.app_model, deployment.runtime.schema.tables, deployment.engine)
    guarded = RecordService(deployment.app_model, deployment.runtime.schema, deployment.engine, deployment.runtime.hooks, policy=policy)
    yield deployment, guarded
    deployment.engine.dispose()


def _actor(deployment: Deployment, username: str, role: str) -> Actor:
    user_id = next(r["id"] for r in deployment.rows("fw_user") if r["username"] == username)
    return Actor(user_id, username, frozenset({role}))


def test_export_keeps_to_the_actors_rows_and_fields(guarded: tuple[Deployment, RecordService]) -> None:
    deployment, records = guarded
    sales = deployment.department_ids()["Sales"]
    for username, title in (("alice", "Mine"), ("bob", "Bob's"), ("alice", "Mine too")):
        # channel cli: field rules bind what a person types, not the system's own writes
        records.create("expense", {"title": title, "amount": 1, "department": sales, "note": "secret"}, _actor(deployment, username, "clerk"), "cli")
    sink = io.BytesIO()
    writer = open_writer(sink, "csv")
    count = export_records(records, "expense", _actor(deployment, "alice", "clerk"), writer, headers="names")
    writer.close()
    rows = list(csv.reader(io.StringIO(sink.getvalue().decode("utf-8-sig"))))
    assert count == 2
    assert "note" not in rows[0]  # hidden from clerks
    department = rows[0].index("department")
    # clerks may not read departments: the link shows the id, not the name
    assert [(r[0], r[department]) for r in rows[1:]] == [("Mine", str(sales)), ("Mine too", str(sales))]


def test_import_needs_the_import_action(guarded: tuple[Deployment, RecordService], tmp_path: Path) -> None:
    deployment, records = guarded
    file = tmp_path / "in.csv"
    file.write_text("title,amount,department\nTaxi,3,Sales\n", encoding="utf-8")
    with file.open("rb") as stream, pytest.raises(PermissionDenied):
        Importer(records, "expense", _actor(deployment, "alice", "clerk")).run(CsvReader(stream))
    assert deployment.count("expense") == 0
    with file.open("rb") as stream:
        report = Importer(records, "expense", _actor(deployment, "bob", "loader")).run(CsvReader(stream))
    assert report.ok, [p.message for p in report.problems]
    assert [(r["title"], r["department"]) for r in deployment.rows("expense")] == [("Taxi", deployment.department_ids()["Sales"])]


def test_api_import_refused_with_403(guarded: tuple[Deployment, RecordService]) -> None:
    deployment, _records = guarded
    client = deployment.api_client("carol", roles=("clerk",))
    response = client.post("/api/v1/expense/import", data=b"title,amount\nA,1\n", content_type="text/csv")
    assert response.status_code == 403
    assert response.get_json()["errors"][0]["code"] == "permission"
    assert deployment.count("expense") == 0
    assert client.get("/api/v1/department/export").status_code == 403


def test_api_import_and_export_without_credentials_are_401(guarded: tuple[Deployment, RecordService]) -> None:
    deployment, _records = guarded
    client = deployment.flask_app().test_client()
    response = client.post("/api/v1/expense/import", data=b"title,amount\nA,1\n", content_type="text/csv")
    assert (response.status_code, response.get_json()["errors"][0]["code"]) == (401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/expense/export").status_code == 401
    assert deployment.count("expense") == 0


def test_cli_works_as_the_system_unless_a_user_is_named(guarded: tuple[Deployment, RecordService], tmp_path: Path) -> None:
    deployment, records = guarded
    Accounts(deployment.records).grant("alice", "clerk")
    sales = deployment.department_ids()["Sales"]
    for username, title in (("alice", "Mine"), ("bob", "Bob's")):
        records.create("expense", {"title": title, "amount": 1, "department": sales, "note": "secret"}, _actor(deployment, username, "clerk"), "cli")
    out = tmp_path / "mine.csv"
    result = deployment.cli("export", "expense", "-o", str(out), "--headers", "names", "--user", "alice")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert "note" not in rows[0] and [r[rows[0].index("title")] for r in rows[1:]] == ["Mine"]
    everything = tmp_path / "all.csv"
    assert deployment.cli("export", "expense", "-o", str(everything), "--headers", "names").exit_code == 0
    assert "note" in everything.read_text(encoding="utf-8-sig").splitlines()[0]
    source = tmp_path / "in.csv"
    source.write_text("title,amount\nA,1\n", encoding="utf-8")
    before = deployment.count("expense")
    refused = deployment.cli("import", "expense", str(source), "--user", "alice")
    assert refused.exit_code == 1 and "you may not import expense records" in refused.output
    unknown = deployment.cli("export", "expense", "-o", str(tmp_path / "x.csv"), "--user", "alicia")
    assert unknown.exit_code == 1 and "no user named 'alicia'" in unknown.output
    assert deployment.count("expense") == before
