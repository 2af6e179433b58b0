"""``formwork import``: CSV and XLSX files written through RecordService, all or nothing,
valid rows with a rejects file, dry runs, and every bad file refused with nothing written."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from transfer_deployment import Deployment, csv_file, xlsx_file

from formwork.records import Actor
from formwork.transfer import Importer
from formwork.transfer.tabular import CsvReader


def test_csv_with_english_labels_creates_records_with_links_by_title(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "expenses.csv", [
        "Title,Amount,Department,Spent on,Category,Owner,Paid",
        "Taxi,12.50,Sales,2026-11-01,Travel,alice,yes",
        "Lunch,8,财务部,2026-11-02,meals,,",
    ])
    result = deployment.cli("import", "expense", str(file))
    assert result.exit_code == 0, result.output
    assert "2 expense record(s) created" in result.output
    rows = deployment.rows("expense")
    departments = deployment.department_ids()
    assert [(r["title"], Decimal(str(r["amount"])), r["department"], r["category"]) for r in rows] == [
        ("Taxi", Decimal("12.50"), departments["Sales"], "travel"),
        ("Lunch", Decimal("8.00"), departments["财务部"], "meals"),
    ]
    assert [bool(r["paid"]) for r in rows] == [True, False]  # the default fills an empty cell
    alice = deployment.rows("fw_user")[0]["id"]
    assert rows[0]["owner"] == alice
    audit = deployment.rows("fw_audit")
    assert {(a["entity"], a["action"], a["channel"]) for a in audit if a["entity"] == "expense"} == {("expense", "create", "import")}


def test_xlsx_with_chinese_headers_and_spreadsheet_values(deployment: Deployment, tmp_path: Path) -> None:
    from datetime import datetime

    file = xlsx_file(tmp_path / "报销.xlsx", [
        ["标题", "金额", "部门", "日期", "类别", "已付"],
        ["出租车", 35.5, "R&D", datetime(2026, 10, 3), "差旅", True],
        [None, None, None, None, None, None],  # a blank row is skipped, and still counted
        ["午餐", 20, deployment.department_ids()["Sales"], "2026-10-04", "餐饮", False],
    ])
    result = deployment.cli("import", "expense", str(file))
    assert result.exit_code == 0, result.output
    rows = deployment.rows("expense")
    departments = deployment.department_ids()
    assert [(r["title"], Decimal(str(r["amount"])), r["department"], r["category"], str(r["spent_on"])[:10]) for r in rows] == [
        ("出租车", Decimal("35.50"), departments["R&D"], "travel", "2026-10-03"),
        ("午餐", Decimal("20.00"), departments["Sales"], "meals", "2026-10-04"),
    ]


def test_headers_match_names_and_labels_loosely(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "loose.csv", ["  TITLE , amount,spent_ON,  Spent  on ", "A,1,2026-01-01,"])
    result = deployment.cli("import", "expense", str(file))
    assert result.exit_code == 1
    assert f"{file}:row 1: Spent  on: column 'Spent  on' repeats column 'spent_ON' (both are spent_on)" in result.output
    assert deployment.count("expense") == 0


def test_dry_run_reports_every_bad_row_and_writes_nothing(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "legacy.csv", [
        "title,amount,department,category,spent_on",
        "Good,1,Sales,travel,2026-01-01",
        "Negative,-5,Sales,travel,2026-01-01",
        "Bad date,3,Slaes,travel,2026-13-01",
        "Good too,4,R&D,meals,2026-01-02",
        ",7,Sales,hotel,2026-01-01",
    ])
    result = deployment.cli("import", "expense", str(file), "--dry-run")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{file}:row 3: amount: must be at least 0" in lines
    assert f"{file}:row 4: department: no department named 'Slaes' (did you mean 'Sales'?)" in lines
    assert f"{file}:row 4: spent_on: must be a date (YYYY-MM-DD)" in lines
    assert f"{file}:row 6: title: is required" in lines
    assert f"{file}:row 6: category: must be one of: travel, meals" in lines
    assert "5 row(s) read, 2 valid: dry run, nothing was written; 3 row(s) would be refused" in result.output
    assert deployment.count("expense") == 0
    assert deployment.count("fw_audit") == 4  # the fixture's departments and user only


def test_clean_dry_run_writes_nothing_and_exits_zero(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "ok.csv", ["title,amount", "A,1", "B,2"])
    result = deployment.cli("import", "expense", str(file), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 row(s) read, 2 valid: dry run, nothing was written" in result.output
    assert deployment.count("expense") == 0


def _long_file(path: Path, total: int, bad: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Title", "Amount", "Department"])
        for index in range(total):
            writer.writerow([f"expense {index}", "-1" if index == bad else f"{index}.25", "Sales" if index % 2 else "R&D"])
    return path


def test_one_bad_row_in_the_middle_of_a_long_file_writes_nothing(deployment: Deployment, tmp_path: Path) -> None:
    # 100,000 rows, the bad one in the middle: batches of 1,000 (the CLI's) were written
    # before it, in the import's one transaction, and all of them are rolled back
    total, bad = 100_000, 50_000
    path = _long_file(tmp_path / "long.csv", total, bad)
    spreadsheet_row = bad + 2  # the header is row 1
    result = deployment.cli("import", "expense", str(path))
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith(f"{path}:row ")]
    assert problems == [f"{path}:row {spreadsheet_row}: Amount: must be at least 0"]
    assert f"{total} row(s) read, {total - 1} valid: nothing was written; 1 row(s) refused" in result.output
    assert deployment.count("expense") == 0
    assert deployment.count("fw_event") == 4  # the fixture's records only


def test_a_bad_row_in_a_middle_batch_rolls_back_the_batches_before(deployment: Deployment, tmp_path: Path) -> None:
    # the same through the importer with small batches: the refused batch comes after written ones
    total, bad = 700, 350
    path = _long_file(tmp_path / "long.csv", total, bad)
    with path.open("rb") as stream:
        report = Importer(deployment.records, "expense", Actor.system(), batch_size=100).run(CsvReader(stream))
    assert [p.format("long.csv") for p in report.problems] == [f"long.csv:row {bad + 2}: Amount: must be at least 0"]
    assert (report.rows, report.valid, report.rejected, report.created) == (total, total - 1, 1, 0)
    assert deployment.count("expense") == 0
    assert deployment.count("fw_event") == 4


def test_valid_rows_mode_writes_good_rows_and_the_rejects_file(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "mixed.csv", [
        "标题,金额,部门",
        "Good,1,Sales",
        "Bad,-1,Sales",
        "Also good,2,Nowhere dept",
        "Fine,3,",
    ])
    result = deployment.cli("import", "expense", str(file), "--mode", "valid-rows")
    assert result.exit_code == 1  # something was refused
    assert "2 expense record(s) created; 2 row(s) refused, written to" in result.output
    assert [r["title"] for r in deployment.rows("expense")] == ["Good", "Fine"]
    rejects = tmp_path / "mixed.rejects.csv"
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["标题", "金额", "部门", "import errors"],
        ["Bad", "-1", "Sales", "金额: must be at least 0"],
        ["Also good", "2", "Nowhere dept", "部门: no department named 'Nowhere dept' (give the record by its name or id)"],
    ]
    # the corrected rejects file imports as it is: its error column is skipped
    fixed = csv_file(tmp_path / "fixed.csv", ["标题,金额,部门,import errors", "Bad,1,Sales,金额: must be at least 0"])
    again = deployment.cli("import", "expense", str(fixed))
    assert again.exit_code == 0, again.output
    assert deployment.count("expense") == 3


def test_duplicate_unique_values_inside_one_file(deployment: Deployment, tmp_path: Path) -> None:
    # department codes are unique: the second row repeating one is refused, in any batch
    file = csv_file(tmp_path / "departments.csv", ["name,code,parent", "Asia,AS,", "Europe,EU,", "Also Asia,AS,Asia", "China,CN,Asia"])
    result = deployment.cli("import", "department", str(file), "--mode", "valid-rows")
    assert result.exit_code == 1
    assert any(line.startswith(f"{file}:row 4: code: must be unique") for line in result.output.splitlines()), result.output
    names = {r["name"]: r for r in deployment.rows("fw_department")}
    assert "Also Asia" not in names
    assert names["China"]["parent"] == names["Asia"]["id"]  # a parent created by an earlier row of the file


def test_links_by_id_and_ambiguous_titles(deployment: Deployment, tmp_path: Path) -> None:
    deployment.records.create("department", {"name": "Sales", "code": "S2"}, Actor.system(), "cli")
    sales_ids = [r["id"] for r in deployment.rows("fw_department") if r["name"] == "Sales"]
    rd = deployment.department_ids()["R&D"]
    file = csv_file(tmp_path / "links.csv", ["title,amount,department", f"By id,1,{rd}", "Ambiguous,1,Sales", f"Missing id,1,{max(sales_ids) + 100}"])
    result = deployment.cli("import", "expense", str(file))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{file}:row 3: department: 2 department records are named 'Sales': give the id of the one you mean" in lines
    assert f"{file}:row 4: department: refers to a department that does not exist (id {max(sales_ids) + 100})" in lines
    assert deployment.count("expense") == 0
    fixed = csv_file(tmp_path / "fixed.csv", ["title,amount,department", f"By id,1,{rd}", f"By other id,1,{sales_ids[1]}"])
    assert deployment.cli("import", "expense", str(fixed)).exit_code == 0
    assert [r["department"] for r in deployment.rows("expense")] == [rd, sales_ids[1]]


def test_unknown_header_and_missing_required_column(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "wrong.csv", ["Titel,Departmen,id,状态", "A,Sales,1,x"])
    result = deployment.cli("import", "expense", str(file))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{file}:row 1: Titel: column 'Titel' is not a field of expense (did you mean 'Title'?)" in lines
    assert f"{file}:row 1: Departmen: column 'Departmen' is not a field of expense (did you mean 'Department'?)" in lines
    assert f"{file}:row 1: id: column 'id' is set by the system and cannot be imported: remove it" in lines
    assert f"{file}:row 1: a column for the required field 'amount' is missing" in lines
    assert f"{file}:row 1: a column for the required field 'title' is missing" in lines
    assert deployment.count("expense") == 0


def test_unknown_encoding(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "x.csv", ["title,amount", "A,1"])
    result = deployment.cli("import", "expense", str(file), "--encoding", "gbkk")
    assert result.exit_code == 1
    assert "unknown encoding 'gbkk' (did you mean 'gbk'?)" in result.output
    assert deployment.count("expense") == 0


def test_undecodable_bytes_name_the_row_and_write_nothing(deployment: Deployment, tmp_path: Path) -> None:
    # a file saved by a Chinese Excel in GBK, read as UTF-8
    lines = ["title,amount", "ok,1", "ok 2,2", "出差,3", "ok 3,4"]
    file = csv_file(tmp_path / "gbk.csv", lines, encoding="gbk")
    result = deployment.cli("import", "expense", str(file))
    assert result.exit_code == 1
    assert f"{file}:row 4: cannot be read as utf-8 (bytes b3 f6); save the file as UTF-8 or give its encoding, e.g. --encoding gb18030" in result.output
    assert deployment.count("expense") == 0
    good = deployment.cli("import", "expense", str(file), "--encoding", "gbk")
    assert good.exit_code == 0, good.output
    assert [r["title"] for r in deployment.rows("expense")] == ["ok", "ok 2", "出差", "ok 3"]


def test_files_that_are_not_tables(deployment: Deployment, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = deployment.cli("import", "expense", str(empty))
    assert result.exit_code == 1
    assert "empty.csv: the file is empty: its first row must name the columns" in result.output
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    result = deployment.cli("import", "expense", str(old))
    assert result.exit_code == 1
    assert "old Excel .xls file: save it as .xlsx or CSV" in result.output
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    result = deployment.cli("import", "expense", str(broken))
    assert result.exit_code == 1
    assert "not a readable XLSX workbook" in result.output
    result = deployment.cli("import", "expens", str(empty))
    assert result.exit_code == 1
    assert "there is no entity 'expens' (did you mean 'expense'?)" in result.output
    assert deployment.count("expense") == 0


def test_importer_used_from_python(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "long_title.csv", ["title,amount", "x" * 41 + ",1", "fine,2"])
    positions: list[int] = []
    importer = Importer(deployment.records, "expense", Actor.system(), batch_size=1, progress=positions.append)
    with file.open("rb") as stream:
        report = importer.run(CsvReader(stream, extent=file.stat().st_size))
    assert [p.format("f.csv") for p in report.problems] == ["f.csv:row 2: title: must be at most 40 characters"]
    # progress is told after each batch, in bytes of the file read so far
    assert len(positions) == 2 and positions[0] <= positions[1] == file.stat().st_size
    assert (report.rows, report.valid, report.rejected, report.created) == (2, 1, 1, 0)
    assert deployment.count("expense") == 0


def test_valid_rows_mode_stops_at_undecodable_bytes_and_leaves_no_rejects(deployment: Deployment, tmp_path: Path) -> None:
    file = csv_file(tmp_path / "half.csv", ["title,amount", "bad,-1", "good,1", "出差,3"], encoding="gbk")
    result = deployment.cli("import", "expense", str(file), "--mode", "valid-rows")
    assert result.exit_code == 1
    assert f"{file}:row 4: cannot be read as utf-8" in result.output
    assert deployment.count("expense") == 0
    assert not (tmp_path / "half.rejects.csv").exists()


def test_xlsx_sheet_by_name(deployment: Deployment, tmp_path: Path) -> None:
    import openpyxl

    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["nothing to import here"])
    data = book.create_sheet("Expenses 2025")
    data.append(["Title", "Amount"])
    data.append(["Train", 88])
    book.save(path)
    wrong = deployment.cli("import", "expense", str(path), "--sheet", "Expenses 2052")
    assert wrong.exit_code == 1
    assert "the workbook has no sheet 'Expenses 2052' (did you mean 'Expenses 2025'?)" in wrong.output
    assert deployment.count("expense") == 0
    result = deployment.cli("import", "expense", str(path), "--sheet", "Expenses 2025")
    assert result.exit_code == 0, result.output
    assert [r["title"] for r in deployment.rows("expense")] == ["Train"]


def test_byte_order_mark_is_read_with_or_without_naming_utf8(deployment: Deployment, tmp_path: Path) -> None:
    file = tmp_path / "bom.csv"
    file.write_bytes("标题,金额\n早餐,6\n".encode("utf-8-sig"))
    for options in ((), ("--encoding", "UTF8")):
        result = deployment.cli("import", "expense", str(file), "--dry-run", *options)
        assert result.exit_code == 0, result.output
    assert deployment.cli("import", "expense", str(file), "--encoding", "utf-8").exit_code == 0
    assert [r["title"] for r in deployment.rows("expense")] == ["早餐"]
