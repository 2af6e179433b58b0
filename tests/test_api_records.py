"""The REST API's record endpoints through Flask's test client, on SQLite and PostgreSQL.

Create, read, partial update and delete with child rows; every bad input gets a JSON
error listing each problem and nothing is written (rows counted in SQL); custom actions
run their plugin hook inside one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_project import Served, serving

URL = "/api/v1/purchase_request"


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Iterator[Served]:
    yield from serving(tmp_path, db_url)


def errors(response) -> list[tuple[str, str, str]]:
    return [(e["field"], e["code"], e["message"]) for e in response.get_json()["errors"]]


def written(api: Served) -> tuple[int, int]:
    return api.rows("purchase_request"), api.rows("purchase_request_line")


def test_create_read_update_delete_with_child_rows(api: Served) -> None:
    pen, ink = api.product("Pen"), api.product("Ink")
    created = api.client.post(
        URL,
        json={
            "title": "Office supplies",
            "amount": 12.5,
            "needed_by": "2030-01-31",
            "meta": {"source": "web", "ratio": 0.25},
            "lines": [{"product": pen, "quantity": 2, "unit_price": 1.25}, {"product": ink, "quantity": 1, "unit_price": 10}],
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    record = created.get_json()
    assert created.headers["Location"] == f"{URL}/{record['id']}" and created.headers["ETag"] == '"1"'
    assert (record["version"], record["number"], record["currency"], record["urgent"]) == (1, "PR-00001", "CNY", False)
    assert [(line["product"], line["quantity"], line["amount"]) for line in record["lines"]] == [(pen, 2, 2.5), (ink, 1, 10)]
    assert record["total"] == 12.5 and record["needed_by"] == "2030-01-31" and record["meta"] == {"source": "web", "ratio": 0.25}
    assert '"amount":12.50' in created.get_data(as_text=True), "decimals are exact JSON numbers"

    fetched = api.client.get(f"{URL}/{record['id']}")
    assert fetched.status_code == 200 and fetched.get_json() == record

    first = record["lines"][0]
    changed = api.client.patch(
        f"{URL}/{record['id']}",
        json={"version": 1, "title": "Pens only", "lines": [{"id": first["id"], "quantity": 4}, {"product": ink, "quantity": 3, "unit_price": 2}]},
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    after = changed.get_json()
    assert (after["version"], after["title"], after["amount"], changed.headers["ETag"]) == (2, "Pens only", 12.5, '"2"')
    assert [(line["product"], line["quantity"], line["amount"]) for line in after["lines"]] == [(pen, 4, 5), (ink, 3, 6)]
    assert after["lines"][0]["id"] == first["id"] and after["total"] == 11
    assert written(api) == (1, 2)

    by_header = api.client.patch(f"{URL}/{record['id']}", json={"urgent": True}, headers={"If-Match": '"2"'})
    assert by_header.status_code == 200 and by_header.get_json()["version"] == 3

    stale = api.client.delete(f"{URL}/{record['id']}", headers={"If-Match": '"2"'})
    assert stale.status_code == 409 and stale.get_json()["current_version"] == 3
    assert written(api) == (1, 2)
    gone = api.client.delete(f"{URL}/{record['id']}?version=3")
    assert gone.status_code == 204 and gone.get_data() == b""
    assert written(api) == (0, 0)
    missing = api.client.get(f"{URL}/{record['id']}")
    assert missing.status_code == 404 and errors(missing) == [("", "not_found", f"purchase_request {record['id']} does not exist")]


def test_wrong_types_are_listed_with_unknown_and_system_fields(api: Served) -> None:
    response = api.client.post(
        URL,
        json={"title": 5, "amount": "12", "needed_by": "tomorrow", "urgent": "yes", "department": "x", "priority": 2.5, "amonut": 3, "id": 9, "version": 1, "created_by": 1},
    )
    assert response.status_code == 422
    assert sorted(errors(response)) == sorted([
        ("title", "type", "must be text"),
        ("department", "type", "must be the id of a record"),
        ("amount", "type", "must be a number"),
        ("needed_by", "type", "must be a date (YYYY-MM-DD)"),
        ("urgent", "type", "must be true or false"),
        ("priority", "type", "must be a whole number"),
        ("amonut", "unknown_field", "is not a field of purchase_request (did you mean 'amount'?)"),
        ("id", "system_field", "is set by the system and cannot be written"),
        ("version", "system_field", "is set by the system and cannot be written"),
        ("created_by", "system_field", "is set by the system and cannot be written"),
    ])
    assert written(api) == (0, 0)


def test_values_breaking_rules_are_all_reported_at_once(api: Served) -> None:
    pen = api.product("Pen")
    response = api.client.post(
        URL,
        json={
            "title": "x" * 41,
            "amount": -1,
            "priority": 9,
            "currency": "GBP",
            "contact": "nobody",
            "department": 999,
            "lines": [
                {"product": pen, "quantity": 1, "unit_price": 1},
                {"product": pen, "quantity": 1, "unit_price": 1},
                {"product": 12345, "quantity": 0, "unit_price": 1.234},
            ],
        },
    )
    assert response.status_code == 422
    assert sorted(errors(response)) == sorted([
        ("title", "max_length", "must be at most 40 characters"),
        ("department", "link", "refers to a department that does not exist (id 999)"),
        ("amount", "min", "must be at least 0"),
        ("currency", "choice", "must be one of: CNY, USD, EUR"),
        ("contact", "email", "must be an email address like name@example.com"),
        ("priority", "max", "must be at most 5"),
        ("lines[2].product", "link", "refers to a product that does not exist (id 12345)"),
        ("lines[2].quantity", "min", "must be at least 1"),
        ("lines[2].unit_price", "digits", "must have at most 2 decimal places"),
    ])
    assert written(api) == (0, 0)


def test_child_row_type_errors_carry_the_row_index(api: Served) -> None:
    pen = api.product("Pen")
    response = api.client.post(URL, json={"title": "Pens", "lines": [{"product": pen, "quantity": 1, "unit_price": 1}, {"product": pen, "quantity": "a", "unit_price": 1, "colour": "red"}]})
    assert response.status_code == 422
    assert errors(response) == [("lines[1].quantity", "type", "must be a whole number")]
    rows = api.client.post(URL, json={"title": "Pens", "lines": [{"product": pen, "quantity": 1, "unit_price": 1, "colour": "red"}, {"id": 4, "product": pen, "quantity": 1, "unit_price": 1}]})
    assert rows.status_code == 422
    assert errors(rows) == [("lines[1].id", "system_field", "is set by the system: a new record has no rows to keep")]
    not_rows = api.client.post(URL, json={"title": "Pens", "lines": {"product": pen}})
    assert errors(not_rows) == [("lines", "type", "must be a list of rows")]
    unknown = api.client.post(URL, json={"title": "Pens", "lines": [{"product": pen, "quantity": 1, "unit_price": 1, "colour": "red"}]})
    assert errors(unknown) == [("lines[0].colour", "unknown_field", "is not a field of purchase_request_line")]
    assert written(api) == (0, 0)


def test_a_duplicate_unique_value_is_refused(api: Served) -> None:
    first = api.client.post("/api/v1/product", json={"name": "Pen", "price": 1})
    assert first.status_code == 201
    again = api.client.post("/api/v1/product", json={"name": "Pen", "price": 2})
    assert again.status_code == 422
    assert errors(again) == [("name", "unique", "must be unique: another product already has 'Pen'")]
    assert api.rows("product") == 1


def test_a_stale_version_gets_409_with_the_current_version(api: Served) -> None:
    record = api.client.post(URL, json={"title": "Chairs"}).get_json()
    assert api.client.patch(f"{URL}/{record['id']}", json={"version": 1, "title": "Desks"}).status_code == 200
    audit = api.rows("fw_audit")
    stale = api.client.patch(f"{URL}/{record['id']}", json={"version": 1, "title": "Lamps"})
    assert stale.status_code == 409
    body = stale.get_json()
    assert body["current_version"] == 2
    assert body["errors"] == [{"field": "version", "code": "stale", "message": f"purchase_request {record['id']} was changed by someone else (now version 2); reload it and try again"}]
    assert api.client.get(f"{URL}/{record['id']}").get_json()["title"] == "Desks"
    assert api.rows("fw_audit") == audit, "no audit row: nothing was written"


def test_an_update_must_name_its_version(api: Served) -> None:
    record = api.client.post(URL, json={"title": "Chairs"}).get_json()
    path = f"{URL}/{record['id']}"
    audit = api.rows("fw_audit")
    missing = api.client.patch(path, json={"title": "Desks"})
    assert missing.status_code == 428
    assert [e["code"] for e in missing.get_json()["errors"]] == ["version_required"]
    clash = api.client.patch(path, json={"title": "Desks", "version": 1}, headers={"If-Match": '"2"'})
    assert clash.status_code == 400 and errors(clash) == [("version", "version", "the body and If-Match name different versions")]
    bad = api.client.patch(path, json={"title": "Desks", "version": "one"})
    assert bad.status_code == 400 and errors(bad) == [("version", "type", "must be the record's version, a whole number")]
    assert api.client.get(path).get_json()["title"] == "Chairs"
    assert api.rows("fw_audit") == audit


def test_bodies_that_are_not_json_objects_are_refused(api: Served) -> None:
    as_form = api.client.post(URL, data={"title": "Chairs"})
    assert as_form.status_code == 415 and errors(as_form) == [("", "content_type", "send the record as JSON with Content-Type: application/json")]
    broken = api.client.post(URL, data='{"title": "Chairs"', content_type="application/json")
    assert broken.status_code == 400 and errors(broken)[0][1] == "json"
    a_list = api.client.post(URL, json=[{"title": "Chairs"}])
    assert a_list.status_code == 400 and errors(a_list) == [("", "json", "the body must be a JSON object")]
    not_a_number = api.client.post(URL, data='{"title": "Chairs", "amount": NaN}', content_type="application/json")
    assert not_a_number.status_code == 400
    nul = api.client.post(URL, json={"title": "Ch\u0000airs"})
    assert nul.status_code == 422 and errors(nul) == [("title", "type", "must not contain NUL characters")]
    too_big = api.client.post(URL, json={"title": "Chairs", "priority": 2**40, "needed_by": "0001-01-01T00:00:00+05:00"})
    assert too_big.status_code == 422
    assert errors(too_big) == [("needed_by", "type", "must be a date (YYYY-MM-DD)"), ("priority", "max", "must be at most 2147483647")]
    assert written(api) == (0, 0)


def test_an_oversized_body_gets_413(api: Served) -> None:
    response = api.client.post(URL, json={"title": "Chairs", "notes": "x" * (1024 * 1024 + 1)})
    assert response.status_code == 413
    assert response.get_json()["errors"][0]["code"] == "request_entity_too_large"
    assert written(api) == (0, 0)


def test_plugin_refusals_and_failures(api: Served, caplog: pytest.LogCaptureFixture) -> None:
    refused = api.client.post(URL, json={"title": "forbidden"})
    assert refused.status_code == 422 and errors(refused) == [("title", "plugin", "this title is not allowed")]
    with caplog.at_level(logging.ERROR):
        crashed = api.client.post(URL, json={"title": "crash"})
    assert crashed.status_code == 500
    [(field, code, message)] = errors(crashed)
    assert (field, code) == ("", "internal") and "error id" in message and "Traceback" not in crashed.get_data(as_text=True)
    error_id = message.rsplit(" ", 1)[-1].rstrip(")")
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records), "the traceback is in the log under the id"
    assert written(api) == (0, 0)


def test_unknown_entities_records_and_child_entities_are_404(api: Served) -> None:
    assert errors(api.client.get("/api/v1/purchase_requests")) == [("", "not_found", "there is no entity 'purchase_requests' in this API (did you mean 'purchase_request'?)")]
    assert api.client.get("/api/v1/purchase_request_line").status_code == 404
    assert api.client.get(f"{URL}/99").status_code == 404
    assert api.client.get(f"{URL}/abc").status_code == 404
    assert api.client.patch(f"{URL}/99", json={"title": "x", "version": 1}).status_code == 404
    wrong_method = api.client.put(f"{URL}/1", json={})
    assert wrong_method.status_code == 405 and wrong_method.is_json
    assert api.client.get("/api/v1/nothing/here/at/all").is_json
    elsewhere = api.client.get("/nothing-here")
    assert elsewhere.status_code == 404 and not elsewhere.is_json, "pages outside the API keep the app's error pages"


def test_fields_and_expand_shape_a_record(api: Served) -> None:
    pen = api.product("Pen")
    department = api.client.post("/api/v1/department", json={"name": "Sales"}).get_json()
    record = api.client.post(URL, json={"title": "Pens", "department": department["id"], "lines": [{"product": pen, "quantity": 1, "unit_price": 2}]}).get_json()
    shaped = api.client.get(f"{URL}/{record['id']}?fields=title,department&expand=department,lines.product").get_json()
    assert set(shaped) == {"id", "version", "title", "department", "lines"}
    assert shaped["department"]["name"] == "Sales" and shaped["lines"][0]["product"]["name"] == "Pen"
    bad = api.client.get(f"{URL}/{record['id']}?fields=titel&expand=title,lines")
    assert bad.status_code == 400
    assert errors(bad) == [
        ("fields", "unknown_field", "'titel' is not a field of purchase_request (did you mean 'title'?)"),
        ("expand", "expand", "'title' in 'title' is not a link or table field of purchase_request"),
        ("expand", "expand", "'lines' ends in a table field; name a link of its rows, like lines.<link>"),
    ]


def test_custom_actions_run_their_hook_in_one_transaction(api: Served) -> None:
    record = api.client.post(URL, json={"title": "Chairs"}).get_json()
    path = f"{URL}/{record['id']}/actions"
    done = api.client.post(f"{path}/mark_urgent")
    assert done.status_code == 200
    body = done.get_json()
    assert body["result"] == {"marked": "PR-00001"} and body["record"]["urgent"] is True and body["record"]["version"] == 2
    again = api.client.post(f"{path}/mark_urgent", json={"version": 2})
    assert again.status_code == 422 and errors(again) == [("urgent", "plugin", "is urgent already")]
    stale = api.client.post(f"{path}/mark_urgent", json={"version": 1})
    assert stale.status_code == 409 and stale.get_json()["current_version"] == 2
    api.client.patch(f"{URL}/{record['id']}", json={"version": 2, "urgent": False})
    crashed = api.client.post(f"{path}/explode")
    assert crashed.status_code == 500 and errors(crashed)[0][1] == "internal"
    now = api.client.get(f"{URL}/{record['id']}").get_json()
    assert (now["urgent"], now["version"]) == (False, 3), "the action's own update was rolled back"
    assert api.client.post(f"{path}/launch").status_code == 404
    assert api.client.post(f"{URL}/99/actions/mark_urgent").status_code == 404
    params = api.client.post(f"{path}/mark_urgent", json={"why": "late"})
    assert params.status_code == 400 and errors(params) == [("why", "unknown_field", "actions take no parameters besides version")]


def test_the_index_lists_the_entities(api: Served) -> None:
    index = api.client.get("/api/v1").get_json()
    assert [e["name"] for e in index["entities"]] == ["department", "product", "purchase_request", "user"]
    assert index["openapi"] == "/api/v1/openapi.json"
