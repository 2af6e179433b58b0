"""Reading records: get with child rows, list and count with filters, sort, search, paging."""

from __future__ import annotations

from decimal import Decimal

import pytest

from formwork.records import RecordInvalid, RecordNotFound, RecordQuery


@pytest.fixture
def requests(world):
    rows = [
        {"title": "Paper", "amount": 10, "currency": "USD"},
        {"title": "Chairs", "amount": 500, "currency": "EUR"},
        {"title": "Paper towels", "amount": 30, "currency": "USD"},
        {"title": "Desk", "amount": 300},
    ]
    return [world.service.create("purchase_request", row, world.actor, "api") for row in rows]


def titles(records):
    return [r["title"] for r in records]


def test_list_filters_sorts_and_pages(world, requests):
    service, actor = world.service, world.actor
    assert titles(service.list("purchase_request", actor, RecordQuery())) == ["Paper", "Chairs", "Paper towels", "Desk"]
    usd = RecordQuery(filters={"currency": "USD"}, sort=("-amount",))
    assert titles(service.list("purchase_request", actor, usd)) == ["Paper towels", "Paper"]
    assert service.count("purchase_request", actor, usd) == 2
    either = RecordQuery(filters={"currency": ["USD", "EUR"]}, sort=("title",), limit=2, offset=1)
    assert titles(service.list("purchase_request", actor, either)) == ["Paper", "Paper towels"]
    from_form = RecordQuery(filters={"amount": "300.00", "urgent": "false"})
    assert titles(service.list("purchase_request", actor, from_form)) == ["Desk"]


def test_list_search_matches_the_title_case_insensitively(world, requests):
    found = world.service.list("purchase_request", world.actor, RecordQuery(search="PAPER", sort=("id",)))
    assert titles(found) == ["Paper", "Paper towels"]
    assert world.service.count("purchase_request", world.actor, RecordQuery(search="50%")) == 0


def test_list_rows_have_typed_values_and_no_child_rows(world, requests):
    first = world.service.list("purchase_request", world.actor, RecordQuery(limit=1))[0]
    assert first["amount"] == Decimal("10.00") and "lines" not in first
    assert first["created_at"].tzinfo is not None


def test_unknown_filter_or_sort_field_is_a_clear_error(world, requests):
    with pytest.raises(RecordInvalid) as caught:
        world.service.list("purchase_request", world.actor, RecordQuery(filters={"titel": "x"}, sort=("-amonut",)))
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("titel", "cannot filter by 'titel': not a field of purchase_request (did you mean 'title'?)"),
        ("amonut", "cannot sort by 'amonut': not a field of purchase_request (did you mean 'amount'?)"),
    ]


def test_get_of_a_missing_record(world):
    with pytest.raises(RecordNotFound) as caught:
        world.service.get("purchase_request", 404, world.actor)
    assert str(caught.value) == "purchase_request 404 does not exist"
