"""Lists through the REST API: conditions, filter expressions, sort, limit/offset, cursors.

Every result is compared with the answer computed in Python from the records created;
every bad parameter gets 400 with the problem named, never a SQL error.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_project import Served, serving

from formwork.records import Actor, AllowAll

URL = "/api/v1/purchase_request"
SYSTEM = Actor.system()


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Iterator[Served]:
    yield from serving(tmp_path, db_url)


@pytest.fixture
def requests(api: Served) -> list[dict[str, Any]]:
    """23 requests with repeated and empty amounts, two departments, some lines."""
    records = api.runtime.records
    sales = records.create("department", {"name": "Sales"}, SYSTEM, "seed")["id"]
    it = records.create("department", {"name": "IT"}, SYSTEM, "seed")["id"]
    pen = api.product("Pen")
    made = []
    for n in range(23):
        values: dict[str, Any] = {
            "title": ["Paper", "paper towels", "Chairs", "Desk", "Pens"][n % 5] + f" {n}",
            "amount": None if n % 7 == 3 else Decimal(n % 6 * 50),
            "currency": ["CNY", "USD", "EUR"][n % 3],
            "department": [sales, it, None][n % 3 if n % 4 else 2],
            "urgent": n % 2 == 0,
            "needed_by": None if n % 5 == 0 else f"2030-0{n % 9 + 1}-1{n % 3}",
        }
        if n % 4 == 0:
            values["lines"] = [{"product": pen, "quantity": n % 3 + 1, "unit_price": "1.00"}]
        made.append(records.create("purchase_request", values, SYSTEM, "seed"))
    return made


def ids(response) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.get_json()["items"]]


def where(requests: list[dict[str, Any]], test) -> list[int]:
    return [r["id"] for r in requests if test(r)]


def errors(response) -> list[tuple[str, str, str]]:
    assert response.status_code == 400, response.get_data(as_text=True)
    return [(e["field"], e["code"], e["message"]) for e in response.get_json()["errors"]]


def test_conditions_with_every_operator(api: Served, requests: list[dict[str, Any]]) -> None:
    get = api.client.get
    assert ids(get(f"{URL}?currency=USD&limit=500")) == where(requests, lambda r: r["currency"] == "USD")
    assert ids(get(f"{URL}?amount__gt=100&limit=500")) == where(requests, lambda r: r["amount"] is not None and r["amount"] > 100)
    assert ids(get(f"{URL}?amount__gte=100&amount__lt=250&limit=500")) == where(requests, lambda r: r["amount"] is not None and 100 <= r["amount"] < 250)
    assert ids(get(f"{URL}?amount__lte=50&limit=500")) == where(requests, lambda r: r["amount"] is not None and r["amount"] <= 50)
    assert ids(get(f"{URL}?amount__ne=0&limit=500")) == where(requests, lambda r: r["amount"] != 0), "ne keeps empty amounts"
    assert ids(get(f"{URL}?currency__in=USD,EUR&limit=500")) == where(requests, lambda r: r["currency"] in ("USD", "EUR"))
    assert ids(get(f"{URL}?title__contains=PAPER&limit=500")) == where(requests, lambda r: "paper" in r["title"].lower())
    assert ids(get(f"{URL}?title__startswith=paper&limit=500")) == where(requests, lambda r: r["title"].lower().startswith("paper"))
    assert ids(get(f"{URL}?amount__isnull=true&limit=500")) == where(requests, lambda r: r["amount"] is None)
    assert ids(get(f"{URL}?department__isnull=false&urgent=true&limit=500")) == where(requests, lambda r: r["department"] is not None and r["urgent"])
    assert ids(get(f"{URL}?needed_by__gte=2030-05-01&limit=500")) == where(requests, lambda r: r["needed_by"] is not None and str(r["needed_by"]) >= "2030-05-01")
    assert ids(get(f"{URL}?amount=&limit=500")) == where(requests, lambda r: r["amount"] is None), "an empty value means empty"
    assert ids(get(f"{URL}?search=TOWELS&limit=500")) == where(requests, lambda r: "towels" in r["title"]), "search looks into the title"


def test_filter_expressions_run_in_sql_with_paths_through_links(api: Served, requests: list[dict[str, Any]]) -> None:
    names = {r["department"]: n for r in requests for n in ["Sales", "IT"] if r["department"] is not None}
    sales = {d for d in names if api.runtime.records.get("department", d, SYSTEM)["name"] == "Sales"}
    expression = "department.name == 'Sales' and (amount >= 100 or amount is None)"
    found = ids(api.client.get(URL, query_string={"filter": expression, "limit": 500}))
    assert found == where(requests, lambda r: r["department"] in sales and (r["amount"] is None or r["amount"] >= 100))
    lines = ids(api.client.get(URL, query_string={"filter": "sum(lines.quantity) >= 2", "limit": 500}))
    assert lines == where(requests, lambda r: sum(line["quantity"] for line in r["lines"]) >= 2)
    combined = ids(api.client.get(URL, query_string={"filter": "currency in ['USD', 'EUR']", "urgent": "true", "limit": 500}))
    assert combined == where(requests, lambda r: r["currency"] in ("USD", "EUR") and r["urgent"])


def test_sort_puts_empty_values_last_ascending_and_first_descending(api: Served, requests: list[dict[str, Any]]) -> None:
    ascending = api.client.get(f"{URL}?sort=amount,-title&limit=500").get_json()["items"]
    filled = [r for r in requests if r["amount"] is not None]
    expected = sorted(sorted(filled, key=lambda r: r["title"], reverse=True), key=lambda r: r["amount"])
    assert [r["id"] for r in ascending] == [r["id"] for r in expected] + where(sorted(requests, key=lambda r: r["title"], reverse=True), lambda r: r["amount"] is None)
    descending = ids(api.client.get(f"{URL}?sort=-amount&limit=500"))
    assert descending[: len(requests) - len(filled)] == where(requests, lambda r: r["amount"] is None), "id breaks ties"


SORTS = ("-amount,title", "needed_by", "-needed_by,-id", "currency,-created_at", "", "-urgent,department")


def test_walking_every_page_by_cursor_gives_the_full_sorted_list(api: Served, requests: list[dict[str, Any]]) -> None:
    for sort in SORTS:
        full = ids(api.client.get(URL, query_string={"sort": sort, "limit": 500}))
        assert sorted(full) == [r["id"] for r in requests]
        walked: list[int] = []
        cursor = None
        pages = 0
        while True:
            query = {"sort": sort, "limit": 4, **({"cursor": cursor} if cursor else {})}
            page = api.client.get(URL, query_string=query).get_json()
            walked += [item["id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert walked == full, sort
        assert pages == 6, "23 records in pages of 4, the last page says there is no next one"


def test_cursor_pages_keep_filters_and_count(api: Served, requests: list[dict[str, Any]]) -> None:
    first = api.client.get(URL, query_string={"currency": "USD", "sort": "-amount", "limit": 3, "count": "true"}).get_json()
    usd = where(requests, lambda r: r["currency"] == "USD")
    assert first["count"] == len(usd) and len(first["items"]) == 3
    rest = api.client.get(URL, query_string={"currency": "USD", "sort": "-amount", "limit": 500, "cursor": first["next_cursor"]}).get_json()
    assert sorted(item["id"] for item in first["items"] + rest["items"]) == usd
    assert rest["next_cursor"] is None and "count" not in rest


def test_limit_and_offset_pages(api: Served, requests: list[dict[str, Any]]) -> None:
    full = ids(api.client.get(f"{URL}?sort=title&limit=500"))
    assert ids(api.client.get(f"{URL}?sort=title&limit=5&offset=10")) == full[10:15]
    assert ids(api.client.get(f"{URL}?sort=title")) == full[:23], "default limit 50"
    assert ids(api.client.get(f"{URL}?sort=title&offset=30")) == []


def test_fields_expand_and_child_rows_in_lists(api: Served, requests: list[dict[str, Any]]) -> None:
    items = api.client.get(f"{URL}?fields=title,lines&expand=department,lines.product&sort=id&limit=5").get_json()["items"]
    assert set(items[0]) == {"id", "version", "title", "lines", "department"}
    assert items[0]["lines"][0]["product"]["name"] == "Pen"
    assert items[0]["department"] is None and items[1]["department"]["name"] == "IT" and items[1]["lines"] == []
    plain = api.client.get(f"{URL}?limit=1").get_json()["items"][0]
    assert "lines" not in plain and isinstance(plain["amount"], int | float)


def test_bad_list_parameters_are_400_with_the_problem_named(api: Served, requests: list[dict[str, Any]]) -> None:
    get = api.client.get
    assert errors(get(f"{URL}?titel=x")) == [("titel", "unknown_field", "cannot filter by 'titel': not a field of purchase_request (did you mean 'title'?)")]
    assert errors(get(f"{URL}?amount__about=3")) == [("amount", "operator", "unknown operator 'about' (use one of: eq, ne, gt, gte, lt, lte, in, contains, startswith, isnull)")]
    assert errors(get(f"{URL}?amount__gt=lots")) == [("amount", "type", "must be a number")]
    assert errors(get(f"{URL}?priority__in=1,99999999999")) == [("priority", "type", "must be a whole number from -2147483648 to 2147483647")]
    assert errors(get(f"{URL}?created_at__gt=0001-01-01T00:00:00%2B05:00")) == [("created_at", "type", "is out of the range of dates and times")]
    assert errors(get(f"{URL}?amount__contains=5")) == [("amount", "operator", "contains applies to text fields only")]
    assert errors(get(f"{URL}?urgent__gt=true")) == [("urgent", "operator", "a boolean field has no order: use eq, ne, in or isnull")]
    assert errors(get(f"{URL}?sort=-amonut")) == [("amonut", "unknown_field", "cannot sort by 'amonut': not a field of purchase_request (did you mean 'amount'?)")]
    assert errors(get(f"{URL}?sort=lines")) == [("lines", "unknown_field", "cannot sort by 'lines': not a field of purchase_request (a table field: its rows belong to each record)")]
    assert errors(get(f"{URL}?sort=meta")) == [("meta", "sort", "cannot sort by 'meta': a JSON field has no order")]
    assert errors(get(f"{URL}?limit=0")) == [("limit", "limit", "must be a whole number, from 1 to 500")]
    assert errors(get(f"{URL}?limit=501&count=maybe")) == [("limit", "limit", "must be a whole number, from 1 to 500"), ("count", "count", "must be true or false")]
    malformed = errors(get(URL, query_string={"filter": "amount >"}))
    assert [(f, c) for f, c, _m in malformed] == [("filter", "filter")] and "not a valid expression" in malformed[0][2]
    unknown = errors(get(URL, query_string={"filter": "amout > 3"}))
    assert unknown == [("filter", "filter", "unknown field 'amout' on purchase_request (column 1) — did you mean 'amount'?")]
    not_a_condition = errors(get(URL, query_string={"filter": "amount + 1"}))
    assert not_a_condition[0][2].startswith("expression gives a number but true/false is needed here") or "needed here" in not_a_condition[0][2]
    no_code = errors(get(URL, query_string={"filter": "__import__('os').system('true')"}))
    assert no_code[0][:2] == ("filter", "filter")
    overflow = errors(get(URL, query_string={"filter": "priority * 2147483647 > 5 or amount > 99999999999999999999999999999"}))
    assert overflow == [("filter", "filter", "cannot be computed by the database: a number or date in it is out of range")]


def test_cursors_are_checked(api: Served, requests: list[dict[str, Any]]) -> None:
    cursor = api.client.get(f"{URL}?sort=title&limit=2").get_json()["next_cursor"]
    assert errors(api.client.get(URL, query_string={"sort": "title", "cursor": cursor[:-2] + "xx"})) == [
        ("cursor", "cursor", "is not a cursor of this API (take next_cursor from a list response)")
    ]
    assert errors(api.client.get(URL, query_string={"sort": "-amount", "cursor": cursor})) == [
        ("cursor", "cursor", "was made for another sort order; send the same sort as the first page")
    ]
    assert errors(api.client.get(URL, query_string={"sort": "title", "cursor": cursor, "offset": 3})) == [("offset", "offset", "cannot be combined with a cursor")]


class OnlyUSD(AllowAll):
    """A permission policy that lets the actor reach USD requests only."""

    def row_filter(self, entity: str, actor: Actor, table: sa.Table, action: str = "read") -> sa.ColumnElement[bool] | None:
        return table.c.currency == "USD" if entity == "purchase_request" else None


def test_the_policy_row_filter_limits_lists_counts_pages_and_reads(api: Served, requests: list[dict[str, Any]]) -> None:
    api.runtime.records.policy = OnlyUSD()
    usd = where(requests, lambda r: r["currency"] == "USD")
    body = api.client.get(f"{URL}?count=true&limit=500").get_json()
    assert [item["id"] for item in body["items"]] == usd and body["count"] == len(usd)
    page = api.client.get(f"{URL}?limit=2&sort=-amount").get_json()
    rest = api.client.get(URL, query_string={"limit": 500, "sort": "-amount", "cursor": page["next_cursor"]}).get_json()
    assert sorted(item["id"] for item in page["items"] + rest["items"]) == usd
    hidden = where(requests, lambda r: r["currency"] != "USD")[0]
    assert api.client.get(f"{URL}/{hidden}").status_code == 404
    assert ids(api.client.get(URL, query_string={"filter": "currency == 'EUR'"})) == []
