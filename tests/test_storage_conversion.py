"""Which type changes are widening, which depend on the data, and which values convert."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from formwork.storage.conversion import classify, shape_of


def change(old, new):
    return classify(shape_of(old), shape_of(new))


@pytest.mark.parametrize(
    ("old", "new", "safety"),
    [
        (sa.String(20), sa.String(40), "safe"),
        (sa.String(20), sa.Text(), "safe"),
        (sa.Integer(), sa.BigInteger(), "safe"),
        (sa.Integer(), sa.Numeric(12, 2), "safe"),
        (sa.Numeric(12, 2), sa.Numeric(14, 3), "safe"),
        (sa.Boolean(), sa.Integer(), "safe"),
        (sa.String(40), sa.String(20), "destructive"),
        (sa.Text(), sa.String(20), "destructive"),
        (sa.Numeric(12, 2), sa.Numeric(12, 1), "destructive"),
        (sa.Numeric(12, 2), sa.Integer(), "destructive"),
        (sa.Integer(), sa.Numeric(6, 2), "destructive"),
        (sa.String(20), sa.Integer(), "needs-data"),
        (sa.Text(), sa.Numeric(12, 2), "needs-data"),
        (sa.Integer(), sa.String(5), "needs-data"),
        (sa.Integer(), sa.Boolean(), "needs-data"),
    ],
)
def test_changes_are_judged_by_shape(old, new, safety):
    assert change(old, new).safety == safety
    assert change(old, new).supported


def test_dates_and_json_are_not_converted_in_place():
    for old, new in [(sa.Date(), sa.Integer()), (sa.JSON(), sa.Text()), (sa.DateTime(), sa.Date()), (sa.String(10), sa.Date())]:
        assert not change(old, new).supported


def test_values_that_convert_exactly():
    to_integer = change(sa.String(20), sa.Integer()).accepts
    assert [to_integer(v) for v in ["12", " 7 ", "-3", "1.5", "x", "", "99999999999"]] == [True, True, True, False, False, False, False]
    to_decimal = change(sa.Text(), sa.Numeric(5, 2)).accepts
    assert [to_decimal(v) for v in ["123.45", "1234.5", "1.234", "0.5", "abc", "1e400", "NaN"]] == [True, False, False, True, False, False, False]
    shorter = change(sa.String(40), sa.String(3)).accepts
    assert [shorter(v) for v in ["abc", "abcd"]] == [True, False]
    to_bool = change(sa.Integer(), sa.Boolean()).accepts
    assert [to_bool(v) for v in [0, 1, 2]] == [True, True, False]
