"""``formwork export``: CSV and XLSX files with label headers and links as titles, which
import again unchanged (round trip)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from transfer_deployment import Deployment

from formwork.records import Actor

FIELDS = ("title", "amount", "department", "spent_on", "category", "paid", "owner", "note")


def _seed(deployment: Deployment) -> None:
    departments = deployment.department_ids()
    alice = deployment.rows("fw_user")[0]["id"]
    actor = Actor.system()
    deployment.records.create("expense", {"title": "出租车", "amount": "35.50", "department": departments["财务部"], "spent_on": "2026-10-03",
                                          "category": "travel", "paid": True, "owner": alice, "note": "机场, \"夜间\"\nline two"}, actor, "cli")
    deployment.records.create("expense", {"title": "Lunch", "amount": "8", "category": "meals"}, actor, "cli")
    deployment.records.create("expense", {"title": "Hotel", "amount": "300", "department": departments["Sales"]}, actor, "cli")


def _stored(deployment: Deployment) -> list[tuple]:
    return [tuple(Decimal(str(r[f])) if f == "amount" else (bool(r[f]) if f == "paid" else r[f]) for f in FIELDS)
            for r in deployment.rows("expense")]


def test_csv_export_has_labels_titles_and_a_byte_order_mark(deployment: Deployment, tmp_path: Path) -> None:
    _seed(deployment)
    out = tmp_path / "expenses.csv"
    result = deployment.cli("export", "expense", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert f"3 expense record(s) written to {out}" in result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Title", "Amount", "Department", "Spent on", "Category", "Paid", "Owner", "Note"]
    assert rows[1] == ["出租车", "35.50", "财务部", "2026-10-03", "travel", "true", "alice", "机场, \"夜间\"\nline two"]
    assert rows[2] == ["Lunch", "8.00", "", "", "meals", "false", "", ""]


def test_export_names_headers_and_filter(deployment: Deployment, tmp_path: Path) -> None:
    _seed(deployment)
    out = tmp_path / "big.csv"
    result = deployment.cli("export", "expense", "-o", str(out), "--headers", "names", "--filter", "amount >= 10 and department.name != 'Sales'")
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(FIELDS)
    assert [r[0] for r in rows[1:]] == ["出租车"]


def test_bad_filter_and_unknown_entity_write_no_file(deployment: Deployment, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "x.csv"
    result = deployment.cli("export", "expense", "-o", str(out), "--filter", "amout > 3")
    assert result.exit_code == 1
    assert "filter: [FW-E406]" in result.output and "amout" in result.output
    assert not out.exists()
    result = deployment.cli("export", "expenses", "-o", str(out))
    assert result.exit_code == 1
    assert "there is no entity 'expenses' (did you mean 'expense'?)" in result.output
    assert not out.exists()
    assert list(folder.iterdir()) == []  # no half-written draft either


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_export_then_import_round_trip(deployment: Deployment, tmp_path: Path, file_format: str) -> None:
    _seed(deployment)
    before = _stored(deployment)
    out = tmp_path / f"expenses.{file_format}"
    assert deployment.cli("export", "expense", "-o", str(out)).exit_code == 0
    if file_format == "xlsx":
        sheet = openpyxl.load_workbook(out, read_only=True).worksheets[0]
        values = list(sheet.iter_rows(values_only=True))
        assert values[0][:3] == ("Title", "Amount", "Department")
        assert values[1][2] == "财务部" and values[1][5] is True
    result = deployment.cli("import", "expense", str(out))
    assert result.exit_code == 0, result.output
    assert "3 expense record(s) created" in result.output
    after = _stored(deployment)
    assert after[:3] == before
    assert after[3:] == before


def test_export_to_standard_output_as_xlsx(deployment: Deployment, tmp_path: Path) -> None:
    _seed(deployment)
    result = deployment.cli("export", "expense", "--format", "xlsx", "--output", "-")
    assert result.exit_code == 0
    path = tmp_path / "stdout.xlsx"
    path.write_bytes(result.stdout_bytes)
    rows = list(openpyxl.load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 4
    assert rows[3][0] == "Hotel" and rows[3][2] == "Sales"


def test_department_tree_exports_parents_by_name(deployment: Deployment, tmp_path: Path) -> None:
    source = tmp_path / "tree.csv"
    source.write_text("name,code,parent\nAsia,AS,\nChina,CN,Asia\nShanghai,SH,China\n", encoding="utf-8")
    assert deployment.cli("import", "department", str(source)).exit_code == 0
    out = tmp_path / "departments.csv"
    assert deployment.cli("export", "department", "-o", str(out), "--filter", "code is not None").exit_code == 0
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["Name"], r["Parent department"]) for r in rows] == [("Asia", ""), ("China", "Asia"), ("Shanghai", "China")]
