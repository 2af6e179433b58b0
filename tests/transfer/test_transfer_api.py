"""``POST /api/v1/<entity>/import`` and ``GET /api/v1/<entity>/export``: the importer and
exporter over HTTP, with the CLI's messages as JSON."""

from __future__ import annotations

import csv
import io

import openpyxl
from transfer_deployment import Deployment

CSV = b"Title,Amount,Department\nTaxi,12.5,Sales\nBad,-1,Sales\nNowhere,3,Slaes\nLunch,4,\n"


def test_multipart_import_all_or_nothing_lists_every_bad_row(deployment: Deployment) -> None:
    client = deployment.api_client()
    response = client.post("/api/v1/expense/import", data={"file": (io.BytesIO(CSV), "legacy.csv")}, content_type="multipart/form-data")
    assert response.status_code == 422
    body = response.get_json()
    assert body["errors"] == [
        {"row": 3, "column": "Amount", "field": "amount", "code": "min", "message": "must be at least 0"},
        {"row": 4, "column": "Department", "field": "department", "code": "link", "message": "no department named 'Slaes' (did you mean 'Sales'?)"},
    ]
    assert (body["rows"], body["valid"], body["created"]) == (4, 2, 0)
    assert deployment.count("expense") == 0


def test_raw_body_dry_run_and_valid_rows(deployment: Deployment) -> None:
    client = deployment.api_client()
    dry = client.post("/api/v1/expense/import?dry_run=true", data=CSV, content_type="text/csv")
    assert dry.status_code == 200
    assert dry.get_json()["error_count"] == 2 and dry.get_json()["created"] == 0
    assert deployment.count("expense") == 0
    # curl --data-binary sends a form content type: the body is still the file
    partial = client.post("/api/v1/expense/import?mode=valid-rows", data=CSV, content_type="application/x-www-form-urlencoded")
    assert partial.status_code == 200
    body = partial.get_json()
    assert (body["created"], body["rejected"]) == (2, 2)
    assert [e["row"] for e in body["errors"]] == [3, 4]
    assert [r["title"] for r in deployment.rows("expense")] == ["Taxi", "Lunch"]


def test_bad_files_and_parameters(deployment: Deployment) -> None:
    client = deployment.api_client()
    wrong = client.post("/api/v1/expense/import", data=b"Titel,Amount\nA,1\n", content_type="text/csv")
    assert wrong.status_code == 400
    assert wrong.get_json()["errors"][0] == {
        "row": 1, "column": "Titel", "field": None, "code": "unknown_column",
        "message": "column 'Titel' is not a field of expense (did you mean 'Title'?)",
    }
    encoding = client.post("/api/v1/expense/import?encoding=nope", data=CSV, content_type="text/csv")
    assert encoding.status_code == 400
    assert encoding.get_json()["errors"][0]["message"].startswith("unknown encoding 'nope'")
    undecodable = client.post("/api/v1/expense/import", data="title,amount\n出差,1\n".encode("gbk"), content_type="text/csv")
    assert undecodable.status_code == 400
    assert undecodable.get_json()["errors"][0]["row"] == 2
    assert client.post("/api/v1/expense/import", data=b"", content_type="text/csv").status_code == 400
    assert client.post("/api/v1/expense/import?mode=some", data=CSV, content_type="text/csv").status_code == 400
    assert client.post("/api/v1/nothing/import", data=CSV, content_type="text/csv").status_code == 404
    assert deployment.count("expense") == 0


def test_export_csv_and_xlsx_stream_and_import_again(deployment: Deployment) -> None:
    client = deployment.api_client()
    assert client.post("/api/v1/expense/import", data="标题,金额,部门\n出租车,12.5,财务部\nLunch,4,\n".encode(), content_type="text/csv").status_code == 200
    response = client.get("/api/v1/expense/export?format=csv&headers=names&filter=amount%20%3E%205")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="expense.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0][:3] == ["title", "amount", "department"]
    assert rows[1:] == [["出租车", "12.50", "财务部", "", "", "false", "", ""]]
    xlsx = client.get("/api/v1/expense/export?format=xlsx")
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.get_data()), read_only=True).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert [v[0] for v in values] == ["Title", "出租车", "Lunch"]
    again = client.post("/api/v1/expense/import", data={"file": (io.BytesIO(xlsx.get_data()), "expense.xlsx")}, content_type="multipart/form-data")
    assert again.status_code == 200, again.get_json()
    assert deployment.count("expense") == 4


def test_export_refusals(deployment: Deployment) -> None:
    client = deployment.api_client()
    bad = client.get("/api/v1/expense/export?filter=amount%20%3E")
    assert bad.status_code == 400
    assert bad.get_json()["errors"][0]["field"] == "filter"
    assert client.get("/api/v1/expense/export?format=pdf").status_code == 400
    assert client.get("/api/v1/nothing/export").status_code == 404
