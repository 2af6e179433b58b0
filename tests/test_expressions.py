"""The expression language: parsing and refusals, type checking, Python evaluation, and SQL
compiled from the same expressions returning exactly the rows Python says are true, on a real
SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.expressions import (
    DateRange,
    EvalContext,
    ExpressionError,
    FieldScope,
    SqlScope,
    check,
    compile_python,
    compile_sql,
    expression_problems,
    parse,
)
from formwork.expressions.nodes import BoolOp, Compare, FieldPath, VariablePath
from formwork.metadata.model import ChoiceOption, Entity, Field
from formwork.problems import Place

NOW = datetime(2024, 3, 10, 9, 30)

ENTITIES = {
    "user": Entity(
        "user",
        "fw_user",
        builtin=True,
        fields={
            "username": Field("username", "string"),
            "department": Field("department", "link", to="department"),
            "manager": Field("manager", "link", to="user"),
        },
    ),
    "department": Entity(
        "department",
        "fw_department",
        builtin=True,
        tree=True,
        fields={
            "name": Field("name", "string"),
            "parent": Field("parent", "link", to="department"),
        },
    ),
    "purchase_request": Entity(
        "purchase_request",
        "purchase_request",
        has_status=True,
        fields={
            "title": Field("title", "string"),
            "department": Field("department", "link", to="department"),
            "amount": Field("amount", "decimal", digits=(12, 2)),
            "quantity": Field("quantity", "integer"),
            "currency": Field(
                "currency", "choice", options=tuple(ChoiceOption(c) for c in ("CNY", "USD", "EUR"))
            ),
            "needed_by": Field("needed_by", "date"),
            "urgent": Field("urgent", "boolean"),
            "note": Field("note", "text"),
            "extra": Field("extra", "json"),
            "lines": Field("lines", "table", entity="purchase_request_line"),
        },
    ),
    "purchase_request_line": Entity(
        "purchase_request_line",
        "purchase_request_line",
        is_child=True,
        fields={
            "product": Field("product", "string"),
            "quantity": Field("quantity", "integer"),
            "unit_price": Field("unit_price", "decimal", digits=(12, 2)),
            "supplier": Field("supplier", "link", to="department"),
        },
    ),
}


def scope(variables: dict[str, str] | None = None, aggregate: bool = False) -> FieldScope:
    return FieldScope(ENTITIES, "purchase_request", variables, aggregate)


def error_of(text: str, field_scope: FieldScope | None = None, expect: str | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        expr = parse(text)
        if field_scope is not None:
            check(expr, field_scope, expect)
    return caught.value


# --- parsing ---------------------------------------------------------------------------------


def test_parse_builds_own_immutable_tree_with_columns() -> None:
    expr = parse("amount > 10 and $user.department.name == department.name")
    assert isinstance(expr.root, BoolOp)
    first, second = expr.root.operands
    assert isinstance(first, Compare) and first.column == 1
    assert second.left == VariablePath(17, "user", ("department", "name"))
    assert second.right == FieldPath(42, ("department", "name"))
    assert expr.field_paths() == ("amount", "department.name")
    assert expr.variables() == ("user",)
    with pytest.raises(AttributeError):
        expr.root.op = "or"  # type: ignore[misc]


def test_chained_comparison_becomes_and() -> None:
    root = parse("0 < amount <= 100").root
    assert isinstance(root, BoolOp) and root.op == "and"
    assert [c.op for c in root.operands] == ["<", "<="]


def test_variables_parse_and_dollar_inside_strings_stays_text() -> None:
    assert parse("$params.period").root == VariablePath(1, "period")
    assert parse("$period").root == VariablePath(1, "period")
    assert parse("$today").root == VariablePath(1, "today")
    root = parse("title == '$user' and $now").root
    assert root.operands[0].right.value == "$user"
    assert root.operands[1] == VariablePath(22, "now")


def test_columns_count_characters_not_bytes() -> None:
    err = error_of("title == '采购申请' and x[0]")
    assert err.column == 21


@pytest.mark.parametrize(
    ("text", "code", "column", "message"),
    [
        ('"x".upper()', "FW-E402", 1, "method calls like .upper() are not allowed"),
        ("(title).upper", "FW-E402", 9, "can only follow a field path, not a parenthesised expression"),
        ("(department).name", "FW-E402", 14, "not a parenthesised expression"),
        ("lines[0]", "FW-E402", 1, "indexing with [...] is not allowed"),
        ("(amount > 5 and\n lines[0])", "FW-E402", 18, "indexing with [...] is not allowed"),
        ("lambda: 1", "FW-E402", 1, "lambda is not allowed"),
        ("[x for x in lines]", "FW-E402", 1, "comprehensions are not allowed"),
        ("sum(x for x in lines)", "FW-E402", 4, "comprehensions are not allowed"),
        ("f'{title}'", "FW-E402", 1, "f-strings are not allowed"),
        ("(x := 1)", "FW-E402", 2, "assignment with := is not allowed"),
        ("coalesce(*lines)", "FW-E402", 10, "* unpacking is not allowed"),
        ("round(amount, digits=2)", "FW-E402", 15, "keyword arguments are not allowed in round()"),
        ("__import__('os')", "FW-E403", 1, "names starting with '_' are not allowed: '__import__'"),
        ("title.__class__", "FW-E403", 7, "names starting with '_' are not allowed: '__class__'"),
        ("_secret == 1", "FW-E403", 1, "names starting with '_'"),
        ("$_x", "FW-E403", 1, "names starting with '_'"),
        ("eval('1')", "FW-E404", 1, "unknown function 'eval'"),
        ("title.strip().x", "FW-E402", 1, "can only follow a field path"),
        ("amount & 1", "FW-E402", 1, "the bitwise operator & is not allowed"),
        ("amount | 1", "FW-E402", 1, "the bitwise operator | is not allowed"),
        ("~amount", "FW-E402", 1, "the bitwise operator ~ is not allowed"),
        ("amount << 2", "FW-E402", 1, "the shift operator << is not allowed"),
        ("9 ** 999999", "FW-E402", 1, "the power operator ** is not allowed"),
        ("amount // 2", "FW-E402", 1, "integer division // is not allowed"),
        ("'ab' * 1000000", "FW-E402", 1, "text cannot be multiplied"),
        ("{'a': 1}", "FW-E402", 1, "dictionaries are not allowed"),
        ("{1, 2}", "FW-E402", 1, "sets are not allowed"),
        ("b'x'", "FW-E402", 1, "bytes literals are not allowed"),
        ("1j", "FW-E402", 1, "complex numbers are not allowed"),
        ("amount is 1", "FW-E402", 11, "`is` may only compare with None"),
        ("None is amount", "FW-E402", 1, "with None on the right"),
        ("x in [1, amount]", "FW-E402", 10, "a list may hold only literal values"),
        ("1e400 > 2", "FW-E402", 1, "number is too large"),
        ("+amount", "FW-E402", 1, "unary + is not allowed"),
        ("amount >", "FW-E401", 1, "not a valid expression: invalid syntax"),
        ("amount > > 1", "FW-E401", 10, "not a valid expression: invalid syntax"),
        ("import os", "FW-E401", 1, "not a valid expression"),
        ("a = 1", "FW-E401", 3, "not a valid expression"),
        ("   ", "FW-E401", 1, "expression is empty"),
        ("amount > 1\x00", "FW-E401", 11, "contains a NUL character"),
        ("(amount >\r\n 5) and x[0]", "FW-E402", 20, "indexing"),
        ("(amount >\r 5 >)", "FW-E401", 15, "not a valid expression"),
        ("$ user", "FW-E401", 1, "'$' must be followed by a variable name"),
        ("amount$user", "FW-E401", 7, "'$' must be followed by a variable name"),
        ("$params", "FW-E402", 1, "$params needs a parameter name"),
        ("ǃuser == 1", "FW-E403", 1, "is not a valid name"),
        ("sumx(lines.quantity)", "FW-E404", 1, "unknown function 'sumx'"),
        ("today(1)", "FW-E408", 1, "today() takes no arguments, got 1"),
        ("round()", "FW-E408", 1, "round() takes 1 to 2 arguments, got 0"),
        ("coalesce()", "FW-E408", 1, "coalesce() takes at least 1 argument, got 0"),
        ("a" * 2001, "FW-E405", 2001, "at most 2000 are allowed"),
        ("-" * 60 + "amount", "FW-E405", 52, "nested more than 50 levels deep"),
        ("(" * 300 + "1" + ")" * 300, "FW-E405", 201, "nested too deeply"),
    ],
)
def test_refused_constructs_are_located(text: str, code: str, column: int, message: str) -> None:
    err = error_of(text)
    assert (err.code, err.column) == (code, column), str(err)
    assert message in err.message, str(err)


def test_unknown_function_hint_names_the_close_one() -> None:
    assert error_of("sumx(lines.quantity)").hint == "did you mean 'sum'?"
    assert "days_between" in (error_of("frobnicate(1)").hint or "")


# --- type checking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("amount > 100 and currency == 'USD'", "boolean"),
        ("department.name", "string"),
        ("department.parent.parent.name", "string"),
        ("$user.department.name == department.name", "boolean"),
        ("sum(lines.quantity * lines.unit_price)", "decimal"),
        ("sum(lines.quantity)", "integer"),
        ("len(lines) + count(lines.product)", "integer"),
        ("amount / quantity", "decimal"),
        ("quantity % 3", "integer"),
        ("needed_by + 7", "date"),
        ("needed_by >= '2024-01-31' and created_at < '2024-02-01T10:00'", "boolean"),
        ("created_at in $period and needed_by in $params.period", "boolean"),
        ("amount if urgent else 0", "decimal"),
        ("coalesce(note, title, 'none')", "string"),
        ("'bolt' in lines.product", "boolean"),
        ("status == 'approved'", "boolean"),
        ("created_by == $user and updated_by.department == $user.department", "boolean"),
        ("department == 3", "boolean"),
        ("extra is None", "boolean"),
        ("days_between(created_at, today()) > 30", "boolean"),
        ("year(needed_by) * 100 + month(needed_by)", "integer"),
        ("round(amount / 3, 2)", "decimal"),
        ("date('2024-01-01')", "date"),
        ("$min_amount", "decimal"),
    ],
)
def test_check_gives_result_type(text: str, result: str) -> None:
    assert check(parse(text), scope({"period": "daterange", "min_amount": "decimal"})) == result


@pytest.mark.parametrize(
    ("text", "code", "column", "message", "hint"),
    [
        ("amout > 5", "FW-E406", 1, "unknown field 'amout' on purchase_request", "did you mean 'amount'?"),
        ("department.nam == 'x'", "FW-E406", 1, "unknown field 'nam' on department", "did you mean 'name'?"),
        ("title.name == 'x'", "FW-E406", 1, "'title' is a string field and has no field 'name'", None),
        ("$perod", "FW-E411", 1, "unknown variable '$perod'", "did you mean '$period'?"),
        ("$user.departmnt", "FW-E406", 1, "unknown field 'departmnt' on user", "did you mean 'department'?"),
        ("needed_by > 'tomorrow'", "FW-E407", 13, "'tomorrow' is not a date", None),
        ("needed_by > title", "FW-E407", 13, "cannot compare a date with text", None),
        ("amount == '100'", "FW-E407", 1, "cannot compare a decimal number with text using ==", None),
        ("currency == 'USDD'", "FW-E407", 13, "'USDD' is not an option of currency", "did you mean 'USD'?"),
        ("currency in ['CNY', 'EURO']", "FW-E407", 21, "'EURO' is not an option of currency", None),
        ("note == None", "FW-E407", 1, "comparing with None is never true", None),
        ("quantity in [1, None]", "FW-E407", 17, "None in a list never matches", None),
        ("urgent > False", "FW-E407", 1, "cannot compare true/false with true/false using >", None),
        (
            "department == $user",
            "FW-E407",
            1,
            "cannot compare a link to department with a link to user",
            None,
        ),
        ("extra == 'x'", "FW-E407", 1, "cannot compare JSON with text", None),
        (
            "department == 'Sales'",
            "FW-E407",
            1,
            "cannot compare a link to department with text using ==",
            "compare a field of the linked record, e.g. department.name",
        ),
        ("title * 2", "FW-E407", 1, "cannot calculate text * a whole number", None),
        ("amount + title", "FW-E407", 1, "cannot calculate a decimal number + text", None),
        ("needed_by - created_at", "FW-E407", 1, "cannot calculate", "use days_between(start, end)"),
        ("amount % 2", "FW-E407", 1, "cannot calculate a decimal number % a whole number", None),
        ("-title", "FW-E407", 1, "cannot negate text", None),
        ("amount and urgent", "FW-E407", 1, "`and` needs true/false values", None),
        ("not title", "FW-E407", 5, "`not` needs true/false values", None),
        ("amount if urgent else title", "FW-E407", 1, "the two results of `if` differ", None),
        ("'a' in title", "FW-E407", 8, "`in` needs a list", "use contains(text, part)"),
        ("[1, 'a']", "FW-E407", 5, "a list mixes", None),
        ("upper(amount)", "FW-E408", 7, "upper() cannot take a decimal number", None),
        ("year(title)", "FW-E408", 6, "year() cannot take text", None),
        ("round(amount, quantity)", "FW-E408", 15, "round() needs a whole number from 0 to 10", None),
        ("date(title)", "FW-E408", 6, "date() needs a literal date", None),
        ("date('2024-13-01')", "FW-E408", 6, "date() needs a literal date", None),
        ("coalesce(amount, title)", "FW-E408", 18, "coalesce() mixes", None),
        ("sum(lines.product)", "FW-E408", 5, "measures need numeric fields", None),
        ("avg(title)", "FW-E408", 5, "avg() cannot take text", None),
        (
            "lines.quantity > 1",
            "FW-E410",
            1,
            "one value per row of table 'lines'",
            "e.g. sum(lines.quantity), min(lines.quantity) or count(lines.quantity)",
        ),
        (
            "lines.supplier.name == 'HQ'",
            "FW-E410",
            1,
            "'lines.supplier.name' is one value per row of table 'lines' and must be aggregated",
            "e.g. 'value' in lines.supplier.name, min(lines.supplier.name) or count(lines.supplier.name)",
        ),
        ("sum(amount)", "FW-E410", 1, "sum() aggregates values of child rows", None),
        ("count()", "FW-E410", 1, "count() without a value counts report rows", None),
        ("lines == 1", "FW-E410", 1, "'lines' is a table field holding rows", None),
        ("sum(lines.quantity) + lines.quantity", "FW-E410", 23, "one value per row of table 'lines'", None),
        ("title in $period", "FW-E407", 1, "only dates can be in a date range", None),
        ("$period", "FW-E407", 1, "a date range can only be used after `in`", None),
    ],
)
def test_check_refuses_with_location_and_hint(
    text: str, code: str, column: int, message: str, hint: str | None
) -> None:
    err = error_of(text, scope({"period": "daterange", "period_end": "date"}))
    assert (err.code, err.column) == (code, column), str(err)
    assert message in err.message, str(err)
    if hint is not None:
        assert err.hint == hint


def test_condition_must_be_boolean() -> None:
    err = error_of("amount + 1", scope(), expect="boolean")
    assert err.code == "FW-E409"
    assert "gives a decimal number but true/false is needed" in err.message
    assert check(parse("amount > 1"), scope(), expect="boolean") == "boolean"
    assert check(parse("quantity * 2"), scope(), expect="decimal") == "integer"
    assert check(parse("$user.department"), scope(), expect="link:department") == "link:department"
    assert error_of("title", scope(), expect="date").code == "FW-E409"


def test_status_exists_only_with_a_workflow() -> None:
    line_scope = FieldScope(ENTITIES, "purchase_request_line")
    err = error_of("status == 'x'", line_scope)
    assert err.code == "FW-E406"
    assert check(parse("quantity * unit_price > 10 and created_by == $user"), line_scope) == "boolean"


def test_report_measures_must_aggregate_the_rows() -> None:
    measures = scope(aggregate=True)
    assert check(parse("sum(amount)"), measures) == "decimal"
    assert check(parse("count()"), measures) == "integer"
    assert check(parse("avg(quantity)"), measures) == "decimal"
    assert check(parse("sum(amount) / count()"), measures) == "decimal"
    assert check(parse("sum(sum(lines.quantity))"), measures) == "integer"
    assert check(parse("max(department.name)"), measures) == "string"
    err = error_of("amount", measures)
    assert (err.code, err.column) == ("FW-E410", 1)
    assert "a measure must aggregate the report's rows, but 'amount' is one value per row" in err.message
    assert error_of("sum(lines.quantity)", measures).code == "FW-E410"
    assert "measures need numeric fields" in error_of("sum(title)", measures).message


def test_expression_problems_locate_inside_the_file() -> None:
    place = Place("metadata/purchase_request.yaml", 12, 20)
    problems = expression_problems(
        "amount > 0 and neded_by > today()", scope(), place, "fields.x.check", "boolean"
    )
    assert len(problems) == 1
    problem = problems[0]
    assert problem.code == "FW-E406"
    assert problem.place == Place("metadata/purchase_request.yaml", 12, 35)
    assert problem.path == "fields.x.check"
    assert problem.hint == "did you mean 'needed_by'?"
    assert 'column 16 of "amount > 0 and neded_by > today()"' in problem.message
    assert problem.format().startswith(
        "metadata/purchase_request.yaml:12: fields.x.check: [FW-E406] unknown field"
    )
    assert expression_problems("amount > 0", scope(), place, "x", "boolean") == []
    assert expression_problems("amount ** 2", scope(), None, "x")[0].code == "FW-E402"


# --- Python evaluation ---------------------------------------------------------------------------

DEPARTMENTS = {1: {"id": 1, "name": "HQ", "parent": None}, 2: {"id": 2, "name": "Sales", "parent": 1}}


def lookup(entity: str, key: Any) -> dict | None:
    assert entity == "department"
    return DEPARTMENTS.get(key)


def evaluate(text: str, record: dict, params: dict | None = None, user: dict | None = None, **kw: Any) -> Any:
    ctx = EvalContext(user, NOW, params or {}, lookup, **kw)
    return compile_python(parse(text), scope({k: "any" for k in params or {}}))(record, ctx)


def test_python_evaluates_fields_links_and_variables() -> None:
    record = {"amount": Decimal("120.50"), "quantity": 3, "department": 2, "title": "Desk"}
    user = {"id": 7, "department": {"id": 2, "name": "Sales"}}
    assert evaluate("amount * quantity", record) == Decimal("361.50")
    assert evaluate("amount / 4", record) == Decimal("30.125")
    assert evaluate("quantity / 2", record) == Decimal("1.5")
    assert evaluate("department.name", record) == "Sales"
    assert evaluate("department.parent.name", record) == "HQ"
    assert evaluate("department == $user.department", record, user=user) is True
    assert evaluate("$user", record, user=user) == 7
    assert evaluate("$user.department.name + '!'", record, user=user) == "Sales!"
    assert evaluate("today()", record) == date(2024, 3, 10)
    assert evaluate("$now", record) == NOW
    assert evaluate("days_between(date('2024-03-01'), today())", record) == 9
    assert evaluate("date('2024-02-28') + 2", record) == date(2024, 3, 1)
    assert evaluate("round(amount / 3, 1)", record) == Decimal("40.2")
    assert evaluate("-7 % 3", record) == -1
    assert evaluate("upper(title) if quantity > 2 else lower(title)", record) == "DESK"


def test_python_links_given_as_dicts_need_no_scope_or_lookup() -> None:
    record = {"department": {"id": 2, "name": "Sales"}}
    ctx = EvalContext({"id": 1, "department": 2}, NOW)
    assert compile_python(parse("department.name == 'Sales'"))(record, ctx) is True
    assert compile_python(parse("department == $user.department"))(record, ctx) is True
    with pytest.raises(ValueError, match="cannot follow a link for 'department.name' given as an id"):
        compile_python(parse("department.name"))({"department": 2}, ctx)


def test_python_none_behaves_like_sql() -> None:
    record = {"amount": None, "quantity": 0, "note": None, "lines": []}
    assert evaluate("amount > 5", record) is False
    assert evaluate("not (amount > 5)", record) is False
    assert evaluate("amount != 5", record) is False
    assert evaluate("amount > 5 or quantity == 0", record) is True
    assert evaluate("amount + 1", record) is None
    assert evaluate("10 / quantity", record) is None
    assert evaluate("amount in [1, 2]", record) is False
    assert evaluate("amount not in [1, 2]", record) is False
    assert evaluate("amount not in []", record) is True
    assert evaluate("note is None and amount is None", record) is True
    assert evaluate("sum(lines.quantity)", record) == 0
    assert evaluate("avg(lines.quantity)", record) is None
    assert evaluate("coalesce(note, 'none')", record) == "none"
    assert evaluate("contains(note, 'x')", record) is False
    assert evaluate("(1 if amount > 5 else 2)", record) == 2


def test_python_aggregates_over_child_rows() -> None:
    record = {
        "discount": 1,
        "lines": [
            {"product": "bolt", "quantity": 10, "unit_price": Decimal("0.25")},
            {"product": "nut", "quantity": None, "unit_price": Decimal("0.10")},
            {"product": "gear", "quantity": 2, "unit_price": Decimal("12.00")},
        ],
    }
    assert evaluate("sum(lines.quantity * lines.unit_price)", record) == Decimal("26.50")
    assert evaluate("len(lines)", record) == 3
    assert evaluate("count(lines.quantity)", record) == 2
    assert evaluate("avg(lines.quantity)", record) == 6
    assert evaluate("max(lines.unit_price)", record) == Decimal("12.00")
    assert evaluate("min(lines.product)", record) == "bolt"
    assert evaluate("'nut' in lines.product", record) is True
    assert evaluate("'screw' not in lines.product", record) is True
    # without a scope the child table is found from the record itself
    ctx = EvalContext(None, NOW)
    assert compile_python(parse("sum(lines.quantity * lines.unit_price)"))(record, ctx) == Decimal("26.50")
    assert compile_python(parse("len(lines) == 3 and len('abc') == 3"))(record, ctx) is True


def test_python_measures_aggregate_report_rows() -> None:
    rows = [{"amount": Decimal("10")}, {"amount": None}, {"amount": Decimal("5.5")}]
    measures = scope(aggregate=True)
    ctx = EvalContext(None, NOW, rows=rows)
    assert compile_python(parse("sum(amount)"), measures)({}, ctx) == Decimal("15.5")
    assert compile_python(parse("count()"), measures)({}, ctx) == 3
    assert compile_python(parse("count(amount)"), measures)({}, ctx) == 2


def test_python_dates_compare_by_day_and_in_ranges() -> None:
    record = {"created_at": datetime(2024, 1, 31, 18, 0), "needed_by": date(2024, 2, 15)}
    period = DateRange(date(2024, 1, 1), date(2024, 1, 31))
    assert evaluate("created_at in $period", record, {"period": period}) is True
    assert evaluate("needed_by in $period", record, {"period": period}) is False
    assert evaluate("needed_by in $period", record, {"period": {"start": "2024-02-01", "end": None}}) is True
    assert evaluate("created_at <= '2024-01-31'", record) is True
    assert evaluate("created_at == date('2024-01-31')", record) is True
    assert evaluate("needed_by > '2024-02-14'", record) is True


# --- SQL on real databases, checked against Python ----------------------------------------------


def make_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    department = sa.Table(
        "fw_department",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80)),
        sa.Column("parent", sa.Integer, sa.ForeignKey("fw_department.id")),
    )
    user = sa.Table(
        "fw_user",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(80)),
        sa.Column("department", sa.Integer, sa.ForeignKey("fw_department.id")),
        sa.Column("manager", sa.Integer),
    )
    request = sa.Table(
        "purchase_request",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(120)),
        sa.Column("department", sa.Integer, sa.ForeignKey("fw_department.id")),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("quantity", sa.Integer),
        sa.Column("currency", sa.String(3)),
        sa.Column("needed_by", sa.Date),
        sa.Column("urgent", sa.Boolean),
        sa.Column("note", sa.Text),
        sa.Column("extra", sa.JSON),
        sa.Column("status", sa.String(20)),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("fw_user.id")),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Column("updated_by", sa.Integer),
        sa.Column("version", sa.Integer),
    )
    line = sa.Table(
        "purchase_request_line",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer),
        sa.Column("parent_field", sa.String(60)),
        sa.Column("row_order", sa.Integer),
        sa.Column("product", sa.String(60)),
        sa.Column("quantity", sa.Integer),
        sa.Column("unit_price", sa.Numeric(12, 2)),
        sa.Column("supplier", sa.Integer, sa.ForeignKey("fw_department.id")),
    )
    return {
        "department": department,
        "user": user,
        "purchase_request": request,
        "purchase_request_line": line,
    }


DEPARTMENT_ROWS = [
    {"id": 1, "name": "HQ", "parent": None},
    {"id": 2, "name": "Sales", "parent": 1},
    {"id": 3, "name": "O'Brien & Co", "parent": 2},
]
USER_ROWS = [{"id": 1, "username": "ann", "department": 2, "manager": None}]


def request(id: int, **values: Any) -> dict[str, Any]:
    row = {
        "id": id,
        "title": None,
        "department": None,
        "amount": None,
        "quantity": None,
        "currency": None,
        "needed_by": None,
        "urgent": None,
        "note": None,
        "extra": None,
        "status": "draft",
        "created_at": None,
        "created_by": None,
        "updated_at": None,
        "updated_by": None,
        "version": 1,
    }
    row.update(values)
    return row


REQUEST_ROWS = [
    request(
        1,
        title="Desk",
        department=2,
        amount=Decimal("1200.00"),
        quantity=4,
        currency="USD",
        needed_by=date(2024, 3, 15),
        urgent=True,
        note="rush order",
        status="approved",
        created_at=datetime(2024, 1, 31, 18, 0),
        created_by=1,
    ),
    request(
        2,
        title="chair",
        department=3,
        amount=Decimal("80.50"),
        quantity=0,
        currency="CNY",
        needed_by=date(2024, 2, 1),
        urgent=False,
        created_at=datetime(2024, 2, 1, 0, 0),
        created_by=1,
    ),
    request(
        3,
        title="Deskjet",
        department=1,
        amount=None,
        quantity=7,
        currency="EUR",
        needed_by=date(2024, 4, 20),
        urgent=None,
        note="",
        status="approved",
        created_at=datetime(2023, 12, 31, 23, 59),
        version=3,
    ),
    request(
        4,
        title="'; DROP TABLE purchase_request; --",
        department=None,
        amount=Decimal("999.99"),
        quantity=None,
        currency=None,
        needed_by=None,
        urgent=True,
        note="x' OR '1'='1",
        created_at=datetime(2024, 3, 1, 12, 0),
        created_by=1,
    ),
    request(
        5,
        title="Lamp",
        department=2,
        amount=Decimal("-15.00"),
        quantity=10,
        currency="USD",
        needed_by=date(2024, 3, 10),
        urgent=False,
        note="rush",
        created_at=None,
    ),
]
LINE_ROWS = [
    {
        "id": 1,
        "parent_id": 1,
        "parent_field": "lines",
        "row_order": 1,
        "product": "bolt",
        "quantity": 10,
        "unit_price": Decimal("0.25"),
        "supplier": 1,
    },
    {
        "id": 2,
        "parent_id": 1,
        "parent_field": "lines",
        "row_order": 2,
        "product": "gear",
        "quantity": 2,
        "unit_price": Decimal("60.00"),
        "supplier": 3,
    },
    {
        "id": 3,
        "parent_id": 2,
        "parent_field": "lines",
        "row_order": 1,
        "product": "nut",
        "quantity": None,
        "unit_price": Decimal("0.10"),
        "supplier": None,
    },
    {
        "id": 4,
        "parent_id": 3,
        "parent_field": "lines",
        "row_order": 1,
        "product": None,
        "quantity": 3,
        "unit_price": None,
        "supplier": 2,
    },
    # a row of another table field with the same child entity must not count for `lines`
    {
        "id": 5,
        "parent_id": 1,
        "parent_field": "spares",
        "row_order": 1,
        "product": "gear",
        "quantity": 99,
        "unit_price": Decimal("1000.00"),
        "supplier": 1,
    },
]

CROSS_CHECKED = [
    "amount > 1000",
    "amount >= 80.5 and amount < 1000",
    "not (amount > 500)",
    "amount != 80.5",
    "department.name == 'Sales'",
    "department.parent.name == 'HQ'",
    'department.name == "O\'Brien & Co"',
    "department.parent.parent.name is None",
    "department is None or department.name != 'HQ'",
    "needed_by >= '2024-03-01'",
    "needed_by == date('2024-02-01')",
    "created_at <= '2024-02-01'",
    "created_at < '2024-02-01T00:00:00'",
    "year(created_at) == 2024 and month(needed_by) in [2, 3]",
    "day(needed_by) == 15",
    "days_between(created_at, needed_by) > 30",
    "days_between(needed_by, today()) >= 0",
    "needed_by < today() + 20",
    "needed_by - 5 > date('2024-03-01')",
    "currency in ['USD', 'EUR']",
    "currency not in ['USD']",
    "quantity not in []",
    "note is None",
    "note is not None and contains(note, 'rush')",
    "contains(note, \"' OR '\")",
    "startswith(title, 'Desk')",
    "upper(title) == 'CHAIR' or lower(title) == 'lamp'",
    "title + '!' == 'Desk!'",
    "len(title) > 4",
    "coalesce(note, 'none') == 'none'",
    "amount / quantity > 100",
    "quantity % 3 == 1",
    "-amount > 0",
    "abs(amount) < 20",
    "round(amount / 3, 1) >= 400",
    "(amount if urgent else 0) > 100",
    "urgent",
    "not urgent",
    "urgent == False",
    "sum(lines.quantity * lines.unit_price) > 100",
    "sum(lines.quantity) == 0",
    "len(lines) == 0",
    "count(lines) >= 2",
    "count(lines.product) == 1",
    "avg(lines.quantity) > 5",
    "max(lines.unit_price) >= 60",
    "min(lines.product) == 'bolt'",
    "'gear' in lines.product",
    "'bolt' not in lines.product",
    "department == $user.department",
    "created_by == $user",
    "$user.department.name == department.name",
    "created_at in $period",
    "needed_by in $period",
    "needed_by in $open_period",
    "amount >= $params.min_amount and status == $status",
    "currency in $currencies",
    "title == $title",
    'title == "\'; DROP TABLE purchase_request; --"',
    "version > 1 or amount is None",
    "round(amount) == 1200 or round(amount) == -15",
    "$params.owner.username == created_by.username",
    "created_by == $owner",
    "round(amount / 7, 2) == 11.5",
    "max(lines.product) == 'gear'",
    "30 + needed_by > today() + 30",
    "department.id == 2",
    "department in [1, 3]",
    "created_by.username == 'ann'",
    "(quantity if urgent else -quantity) < 0",
    "coalesce(amount, 0) + coalesce(quantity, 0) > 1000",
    "len(lines.product) == 2",
    "quantity > len(lines)",
    "sum(lines.quantity * lines.unit_price * quantity) > 400",
    "'HQ' in lines.supplier.name",
    "count(lines.supplier) == 1",
    "max(lines.supplier.parent.name) == 'Sales'",
    "status == 'approved' and (amount > 1000 or quantity > 5)",
]


@pytest.fixture
def database(db_url: str):
    engine = sa.create_engine(db_url)
    metadata = sa.MetaData()
    tables = make_tables(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(tables["department"].insert(), DEPARTMENT_ROWS)
        conn.execute(tables["user"].insert(), USER_ROWS)
        conn.execute(tables["purchase_request"].insert(), REQUEST_ROWS)
        conn.execute(tables["purchase_request_line"].insert(), LINE_ROWS)
    yield engine, tables
    engine.dispose()


PARAMS = {
    "period": DateRange(date(2024, 1, 1), date(2024, 2, 1)),
    "open_period": (date(2024, 3, 10), None),
    "min_amount": Decimal("80.50"),
    "status": "draft",
    "currencies": ["USD", "CNY"],
    "title": "'; DROP TABLE purchase_request; --",
    "owner": 1,
}


def python_record(row: dict[str, Any]) -> dict[str, Any]:
    """The request as the records layer would hand it over: links as ids, child rows as a list."""
    record = dict(row)
    record["lines"] = [
        line for line in LINE_ROWS if line["parent_id"] == row["id"] and line["parent_field"] == "lines"
    ]
    return record


def department_lookup(entity: str, key: Any) -> dict | None:
    rows = {"department": DEPARTMENT_ROWS, "user": USER_ROWS}[entity]
    return next((r for r in rows if r["id"] == key), None)


VARIABLES = {
    "period": "daterange",
    "open_period": "daterange",
    "min_amount": "decimal",
    "status": "string",
    "currencies": "list:string",
    "title": "string",
    "owner": "link:user",
}


def cross_check(database, ctx: EvalContext, texts: list[str]) -> list[str]:
    """Expressions whose SQL rows differ from the rows Python accepts, with both answers."""
    engine, tables = database
    sql_scope = SqlScope(ENTITIES, tables, "purchase_request", ctx, VARIABLES)
    field_scope = scope(VARIABLES)
    table = tables["purchase_request"]
    mismatches = []
    with engine.connect() as conn:
        for text in texts:
            expr = parse(text)
            assert check(expr, field_scope, expect="boolean") == "boolean"
            test = compile_python(expr, field_scope)
            expected = [row["id"] for row in REQUEST_ROWS if test(python_record(row), ctx) is True]
            query = sa.select(table.c.id).where(compile_sql(expr, sql_scope)).order_by(table.c.id)
            found = list(conn.execute(query).scalars())
            if found != expected:
                mismatches.append(f"{text}: sql {found} python {expected}")
    return mismatches


def test_sql_selects_the_rows_python_accepts(database) -> None:
    ctx = EvalContext({"id": 1, "username": "ann", "department": 2}, NOW, PARAMS, department_lookup)
    assert cross_check(database, ctx, CROSS_CHECKED) == []


DAY_SENSITIVE = [
    "created_at <= '2024-01-31'",
    "created_at == date('2024-02-01')",
    "year(created_at) == 2024",
    "month(created_at) == 1",
    "day(created_at) == 31",
    "days_between(created_at, needed_by) == 44",
    "created_at in $period",
    "created_at < now()",
]


def test_days_of_datetimes_are_utc_days_whatever_the_session_time_zone(database) -> None:
    engine, tables = database
    if engine.dialect.name == "postgresql":
        # 18:00 UTC on 31 January is already 1 February in Shanghai
        sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("SET TIME ZONE 'Asia/Shanghai'"))
        engine.dispose()
    ctx = EvalContext(None, NOW.replace(tzinfo=UTC), PARAMS, department_lookup)
    assert cross_check(database, ctx, DAY_SENSITIVE) == []
    # the same moments handed to Python with a time zone give the same days
    shanghai = timezone(timedelta(hours=8))
    record = {"created_at": datetime(2024, 2, 1, 2, 0, tzinfo=shanghai), "needed_by": date(2024, 3, 15)}
    assert [compile_python(parse(t), scope(VARIABLES))(record, ctx) for t in DAY_SENSITIVE] == [
        True,
        False,
        True,
        True,
        True,
        True,
        True,
        True,
    ]


def test_sql_agrees_with_python_for_an_anonymous_user_and_missing_params(database) -> None:
    ctx = EvalContext(None, NOW, {"period": None, "currencies": []}, department_lookup)
    texts = [
        "created_by == $user",
        "created_by != $user",
        "not (department == $user.department)",
        "$user.department.name == department.name",
        "created_at in $period",
        "not (created_at in $period)",
        "currency in $currencies",
        "currency not in $currencies",
        "amount >= $min_amount or $min_amount is None",
    ]
    assert cross_check(database, ctx, texts) == []


def test_sql_cross_check_is_not_vacuous() -> None:
    """Every cross-checked expression must tell some rows apart, or the comparison proves nothing."""
    ctx = EvalContext({"id": 1, "username": "ann", "department": 2}, NOW, PARAMS, department_lookup)
    vacuous = []
    for text in CROSS_CHECKED:
        test = compile_python(parse(text), scope(VARIABLES))
        answers = {test(python_record(row), ctx) is True for row in REQUEST_ROWS}
        if answers != {True, False}:
            vacuous.append(text)
    assert vacuous == ["quantity not in []"]


def test_sql_values_and_report_measures(database) -> None:
    engine, tables = database
    ctx = EvalContext(None, NOW)
    sql_scope = SqlScope(ENTITIES, tables, "purchase_request", ctx)
    table = tables["purchase_request"]
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(
                table.c.id, compile_sql(parse("sum(lines.quantity * lines.unit_price)"), sql_scope)
            ).order_by(table.c.id)
        ).all()
        assert [(i, Decimal(v).quantize(Decimal("0.01"))) for i, v in total] == [
            (1, Decimal("122.50")),
            (2, Decimal("0.00")),
            (3, Decimal("0.00")),
            (4, Decimal("0.00")),
            (5, Decimal("0.00")),
        ]
        group = compile_sql(parse("department.name"), sql_scope)
        measures = [compile_sql(parse(m), sql_scope) for m in MEASURES]
        grouped = conn.execute(
            sa.select(group, *measures).select_from(table).group_by(group).order_by(group)
        ).all()
    assert len(grouped) == 4
    python_rows: dict[str | None, list[dict]] = {}
    for row in REQUEST_ROWS:
        name = department_lookup("department", row["department"])["name"] if row["department"] else None
        python_rows.setdefault(name, []).append(python_record(row))
    measure_scope = scope(aggregate=True)
    for name, *values in grouped:
        group_ctx = EvalContext(None, NOW, lookup=department_lookup, rows=python_rows[name])
        expected = [compile_python(parse(m), measure_scope)({}, group_ctx) for m in MEASURES]
        assert [_rounded(v) for v in values] == [_rounded(v) for v in expected], name


MEASURES = (
    "sum(amount)",
    "count()",
    "count(amount)",
    "avg(quantity)",
    "sum(sum(lines.quantity))",
    "max(sum(lines.unit_price))",
    "min(department.parent.name)",
    "sum(amount) / count()",
)


def _rounded(value: Any) -> Any:
    """Numbers to cents: SQLite returns floats where PostgreSQL and Python give decimals."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return Decimal(str(value)).quantize(Decimal("0.01"))
    return value


def test_sql_injection_attempts_are_plain_values(database) -> None:
    engine, tables = database
    table = tables["purchase_request"]
    hostile = "'; DROP TABLE purchase_request; --"
    ctx = EvalContext({"id": 1, "department": 2}, NOW, {"title": hostile})
    sql_scope = SqlScope(ENTITIES, tables, "purchase_request", ctx)
    with engine.connect() as conn:
        for text in ("title == $title", 'title == "\'; DROP TABLE purchase_request; --"'):
            clause = compile_sql(parse(text), sql_scope)
            assert hostile not in str(clause.compile(engine))
            assert list(conn.execute(sa.select(table.c.id).where(clause)).scalars()) == [4]
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 5


def test_sql_refuses_what_does_not_check(database) -> None:
    engine, tables = database
    sql_scope = SqlScope(ENTITIES, tables, "purchase_request", EvalContext(None, NOW))
    with pytest.raises(ExpressionError) as caught:
        compile_sql(parse("amout > 5"), sql_scope)
    assert caught.value.code == "FW-E406"


def test_sql_follows_links_of_a_table_to_itself(database) -> None:
    engine, tables = database
    table = tables["department"]
    ctx = EvalContext({"id": 1, "department": 3}, NOW)
    sql_scope = SqlScope(ENTITIES, tables, "department", ctx)
    answers = {}
    with engine.connect() as conn:
        for text in ("parent.name == 'HQ'", "parent.parent.name == 'HQ'", "id == $user.department.parent"):
            query = sa.select(table.c.id).where(compile_sql(parse(text), sql_scope)).order_by(table.c.id)
            answers[text] = list(conn.execute(query).scalars())
    assert answers == {
        "parent.name == 'HQ'": [2],
        "parent.parent.name == 'HQ'": [3],
        "id == $user.department.parent": [2],
    }


def random_conditions(count: int, seed: int) -> list[str]:
    """Conditions built at random from the language's pieces (same seed, same list)."""
    rng = random.Random(seed)
    numbers = [
        "amount",
        "quantity",
        "version",
        "len(lines)",
        "sum(lines.quantity)",
        "count(lines.product)",
        "coalesce(amount, 0)",
        "abs(amount)",
        "round(amount)",
        "7",
        "-3",
        "100",
        "2.5",
        "year(needed_by)",
        "days_between(created_at, needed_by)",
        "max(lines.quantity)",
        "len(title)",
        "quantity % 4",
    ]
    texts = [
        "title",
        "note",
        "currency",
        "department.name",
        "lower(title)",
        "upper(note)",
        "'Desk'",
        "'USD'",
        "coalesce(note, '')",
        "title + note",
        "min(lines.product)",
        "created_by.username",
        "'rush'",
    ]
    dates = ["needed_by", "created_at", "today()", "date('2024-02-01')", "needed_by + 3", "'2024-03-10'"]

    def number(depth: int) -> str:
        if depth > 1 or rng.random() < 0.5:
            return rng.choice(numbers)
        op = rng.choice(["+", "-", "*", "/"])
        return f"({number(depth + 1)} {op} {number(depth + 1)})"

    def condition(depth: int) -> str:
        kind = rng.randrange(9 if depth < 2 else 6)
        if kind == 0:
            return f"{number(depth)} {rng.choice(['<', '<=', '>', '>=', '==', '!='])} {number(depth)}"
        if kind == 1:
            return f"{rng.choice(texts)} {rng.choice(['==', '!='])} {rng.choice(texts)}"
        if kind == 2:
            return f"{rng.choice(dates[:3])} {rng.choice(['<', '<=', '>', '>=', '=='])} {rng.choice(dates)}"
        if kind == 3:
            name = rng.choice(["contains", "startswith"])
            return f"{name}({rng.choice(texts)}, {rng.choice(texts)})"
        if kind == 4:
            values = rng.sample(["'USD'", "'EUR'", "'CNY'"], rng.randrange(0, 3))
            return f"currency {rng.choice(['in', 'not in'])} [{', '.join(values)}]"
        if kind == 5:
            return rng.choice(
                ["urgent", "not urgent", "amount is None", "note is not None", "'gear' in lines.product"]
            )
        if kind == 6:
            return f"not ({condition(depth + 1)})"
        if kind == 7:
            return f"({condition(depth + 1)} {rng.choice(['and', 'or'])} {condition(depth + 1)})"
        return (
            f"({number(depth + 1)} if {condition(depth + 1)} else {number(depth + 1)}) > {number(depth + 1)}"
        )

    return [condition(0) for _ in range(count)]


def test_sql_agrees_with_python_on_random_conditions(database) -> None:
    ctx = EvalContext({"id": 1, "username": "ann", "department": 2}, NOW, PARAMS, department_lookup)
    valid = []
    for text in random_conditions(400, seed=20241121):
        try:
            check(parse(text), scope(VARIABLES), expect="boolean")
        except ExpressionError:
            continue  # e.g. a choice compared with text that is not one of its options
        valid.append(text)
    assert len(valid) > 300
    assert cross_check(database, ctx, valid) == []
