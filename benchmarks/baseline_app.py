"""The hand-written baseline of ``api_crud.py``: the ``sales_order`` API written directly
with Flask, SQLAlchemy Core and marshmallow, on the tables Formwork migrated.

It checks what Formwork's API checks for this entity, so the comparison is about the
framework's cost and not about skipped work: types, required fields, lengths, ranges,
choice options, e-mail shape, that the linked customer exists, every child row (with its
index in error messages), and the ``version`` column (1 on create). It does not write an
audit trail or events, and has no plugins, permissions or expression filters: those are
Formwork's extra work.

Served by gunicorn as ``baseline_app:app`` (``--chdir benchmarks``); reads the database
from ``DATABASE_URL``.

    GET  /api/v1/sales_order?priority=high&sort=-ordered_on&limit=50
    POST /api/v1/sales_order        (with "lines": [...])
    GET  /api/v1/sales_order/<id>
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import flask
import sqlalchemy as sa
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

metadata = sa.MetaData()


def _system_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.Integer),
        sa.Column("updated_by", sa.Integer),
        sa.Column("version", sa.Integer, nullable=False),
    ]


customer = sa.Table("customer", metadata, *_system_columns(), sa.Column("name", sa.String(80), nullable=False))
sales_order = sa.Table(
    "sales_order", metadata, *_system_columns(),
    sa.Column("title", sa.String(120), nullable=False),
    sa.Column("notes", sa.Text),
    sa.Column("quantity", sa.Integer),
    sa.Column("amount", sa.Numeric(12, 2)),
    sa.Column("ordered_on", sa.Date, nullable=False),
    sa.Column("urgent", sa.Boolean),
    sa.Column("priority", sa.String(40)),
    sa.Column("contact", sa.String(254)),
    sa.Column("reference", sa.String(40)),
    sa.Column("shipped_at", sa.DateTime),
    sa.Column("customer", sa.Integer, nullable=False),
)
order_line = sa.Table(
    "order_line", metadata, *_system_columns(),
    sa.Column("parent_id", sa.Integer),
    sa.Column("parent_field", sa.String(60)),
    sa.Column("row_order", sa.Integer),
    sa.Column("product", sa.String(60), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Numeric(12, 2)),
)
INT32 = {"min": -(2**31), "max": 2**31 - 1}
MONEY = {"places": 2}


class Money(fields.Decimal):
    """A decimal read exactly and written as a JSON number, as Formwork writes it."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> float | None:
        return None if value is None else float(value)


class UtcDateTime(fields.AwareDateTime):
    """A time written with its UTC offset (SQLite gives naive UTC times back)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class LineSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    product = fields.String(required=True, validate=validate.Length(min=1, max=60))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10000))
    unit_price = Money(allow_none=True, validate=validate.Range(min=0, max=Decimal("9999999999.99")), **MONEY)


class OrderSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    version = fields.Integer(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    created_by = fields.Integer(dump_only=True, allow_none=True)
    updated_by = fields.Integer(dump_only=True, allow_none=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=120))
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))
    quantity = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=0, max=100000))
    amount = Money(allow_none=True, validate=validate.Range(min=0, max=Decimal("9999999999.99")), **MONEY)
    ordered_on = fields.Date(required=True)
    urgent = fields.Boolean(load_default=False)
    priority = fields.String(load_default="low", validate=validate.OneOf(["low", "medium", "high"]))
    contact = fields.Email(allow_none=True, validate=validate.Length(max=254))
    reference = fields.String(allow_none=True, validate=validate.Length(max=40))
    shipped_at = UtcDateTime(allow_none=True, default_timezone=UTC)
    customer = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=INT32["max"]))
    lines = fields.List(fields.Nested(LineSchema), load_default=list)


order_schema = OrderSchema()
list_schema = OrderSchema(many=True, exclude=("lines",), unknown=EXCLUDE)
SORTABLE = {c.name for c in sales_order.columns}
FILTERABLE = {"priority", "urgent", "customer", "reference", "ordered_on"}


def _errors(messages: dict[str, Any], prefix: str = "") -> list[dict[str, str]]:
    """marshmallow's nested messages in the same flat shape as Formwork's."""
    found = []
    for key, value in messages.items():
        name = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            found += _errors(value, name)
        else:
            found += [{"field": name, "code": "invalid", "message": str(text)} for text in value]
    return found


def _problem(status: int, errors: list[dict[str, str]]) -> tuple[flask.Response, int]:
    return flask.jsonify(errors=errors), status


def create_app(url: str) -> flask.Flask:
    """The baseline app on the database at ``url``."""
    engine = sa.create_engine(url, **({"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}))
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            # the same settings as Formwork's engine, so both pay the same for durability
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def on_begin(connection: sa.Connection) -> None:
            # writers take the lock at BEGIN: a read-then-write transaction never deadlocks
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get("write") else "BEGIN")

    app = flask.Flask("baseline")

    @app.post("/api/v1/sales_order")
    def create() -> tuple[flask.Response, int]:
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict):
            return _problem(400, [{"field": "", "code": "json", "message": "the body must be a JSON object"}])
        try:
            values = order_schema.load(body)
        except ValidationError as error:
            return _problem(422, _errors(error.messages))
        lines = values.pop("lines")
        now = datetime.now(UTC)
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            if conn.execute(sa.select(customer.c.id).where(customer.c.id == values["customer"])).first() is None:
                return _problem(422, [{"field": "customer", "code": "link", "message": f"no customer with id {values['customer']}"}])
            stamp = {"created_at": now, "updated_at": now, "version": 1}
            record_id = conn.execute(sales_order.insert().values(**values, **stamp)).inserted_primary_key[0]
            stored_lines = []
            for order, line in enumerate(lines):
                row = {**line, **stamp, "parent_id": record_id, "parent_field": "lines", "row_order": order}
                row["id"] = conn.execute(order_line.insert().values(**row)).inserted_primary_key[0]
                stored_lines.append(row)
        record = {**values, **stamp, "id": record_id, "created_by": None, "updated_by": None, "lines": stored_lines}
        response = flask.jsonify(order_schema.dump(record))
        response.headers["Location"] = f"/api/v1/sales_order/{record_id}"
        response.headers["ETag"] = '"1"'
        return response, 201

    @app.get("/api/v1/sales_order/<int:record_id>")
    def get(record_id: int) -> tuple[flask.Response, int]:
        with engine.connect() as conn:
            row = conn.execute(sa.select(sales_order).where(sales_order.c.id == record_id)).mappings().first()
            if row is None:
                return _problem(404, [{"field": "", "code": "not_found", "message": f"no sales_order {record_id}"}])
            lines = conn.execute(
                sa.select(order_line).where(order_line.c.parent_id == record_id, order_line.c.parent_field == "lines").order_by(order_line.c.row_order)
            ).mappings().all()
        record = {**row, "lines": [dict(line) for line in lines]}
        response = flask.jsonify(order_schema.dump(record))
        response.headers["ETag"] = f'"{row["version"]}"'
        return response, 200

    @app.get("/api/v1/sales_order")
    def listing() -> tuple[flask.Response, int]:
        args = flask.request.args
        conditions = []
        for name in FILTERABLE & set(args):
            try:
                value = OrderSchema().fields[name].deserialize(args[name])
            except ValidationError as error:
                return _problem(400, [{"field": name, "code": "type", "message": str(error.messages[0])}])
            conditions.append(sales_order.c[name] == value)
        order = []
        for key in filter(None, args.get("sort", "").split(",")):
            if key.lstrip("-") not in SORTABLE:
                return _problem(400, [{"field": "sort", "code": "unknown_field", "message": f"cannot sort by {key}"}])
            column = sales_order.c[key.lstrip("-")]
            order.append(column.desc() if key.startswith("-") else column.asc())
        try:
            limit = int(args.get("limit", 50))
        except ValueError:
            return _problem(400, [{"field": "limit", "code": "limit", "message": "must be a whole number"}])
        if not 1 <= limit <= 500:
            return _problem(400, [{"field": "limit", "code": "limit", "message": "must be from 1 to 500"}])
        statement = sa.select(sales_order).where(*conditions).order_by(*order, sales_order.c.id).limit(limit)
        with engine.connect() as conn:
            rows = conn.execute(statement).mappings().all()
        return flask.jsonify(items=list_schema.dump(rows)), 200

    return app


app = create_app(os.environ["DATABASE_URL"])
