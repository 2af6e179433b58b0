"""App builders for the storage tests, and the tests of ``build_schema`` itself.

The metadata compiler is another stage; these tests build ``App`` objects straight from
the model dataclasses, the same way the compiler does, including the built-in entities.
"""

from __future__ import annotations

import dataclasses
import hashlib

import sqlalchemy as sa

from formwork.metadata.model import App, ChoiceOption, Entity, Field
from formwork.storage import build_schema


def field(name: str, type: str = "string", **options) -> Field:
    """A Field; ``options`` may give choice options as plain strings and renamed_from as a str."""
    if "options" in options:
        options["options"] = tuple(ChoiceOption(v) for v in options["options"])
    if isinstance(options.get("renamed_from"), str):
        options["renamed_from"] = (options["renamed_from"],)
    if "digits" in options:
        options["digits"] = tuple(options["digits"])
    return Field(name=name, type=type, **options)


def entity(name: str, *fields: Field, table: str | None = None, **options) -> Entity:
    if isinstance(options.get("renamed_from"), str):
        options["renamed_from"] = (options["renamed_from"],)
    return Entity(name=name, table=table or name, fields={f.name: f for f in fields}, **options)


BUILTINS = (
    entity(
        "user",
        field("username", required=True, unique=True),
        field("full_name"),
        field("email", "email"),
        field("department", "link", to="department"),
        field("manager", "link", to="user"),
        field("active", "boolean", default=True),
        table="fw_user",
        builtin=True,
    ),
    entity(
        "department",
        field("name", required=True),
        field("code", unique=True),
        field("parent", "link", to="department"),
        field("manager", "link", to="user"),
        table="fw_department",
        builtin=True,
        tree=True,
    ),
)


def make_app(*entities: Entity, version: str = "1", name: str = "shop") -> App:
    """An App holding the built-ins plus ``entities``; the hash covers the entity definitions."""
    every = {e.name: e for e in (*BUILTINS, *entities)}
    digest = hashlib.sha256(repr(sorted((n, repr(e)) for n, e in every.items())).encode()).hexdigest()
    return App(name=name, version=version, entities=every, metadata_hash=digest)


def with_fields(base: Entity, *fields: Field, drop: tuple[str, ...] = ()) -> Entity:
    """``base`` with fields added or replaced, and ``drop`` removed."""
    kept = {n: f for n, f in base.fields.items() if n not in drop}
    kept.update({f.name: f for f in fields})
    return dataclasses.replace(base, fields=kept)


PRODUCT = entity(
    "product",
    field("title", max_length=120, required=True),
    field("sku", max_length=20, unique=True),
    field("price", "decimal", digits=(12, 2)),
    field("stock", "integer", default=0),
    field("kind", "choice", options=["goods", "service"], default="goods"),
    field("notes", "text"),
    field("available_from", "date"),
    field("active", "boolean", default=True),
)


def test_tables_follow_the_naming_conventions():
    schema = build_schema(make_app(PRODUCT))
    assert schema.table("user").name == "fw_user"
    assert schema.table("department").name == "fw_department"
    product = schema.table("product")
    assert list(product.c.keys())[:6] == ["id", "created_at", "updated_at", "created_by", "updated_by", "version"]
    assert isinstance(product.c.title.type, sa.String) and product.c.title.type.length == 120
    assert product.c.title.nullable is False
    assert isinstance(product.c.price.type, sa.Numeric) and (product.c.price.type.precision, product.c.price.type.scale) == (12, 2)
    assert "password_hash" in schema.table("user").c
    for system in ("fw_metadata_state", "fw_user_role", "fw_audit", "fw_event", "fw_number_sequence", "fw_token", "fw_session", "fw_task", "fw_job"):
        assert system in schema.metadata.tables


def test_long_names_stay_within_63_characters_and_differ():
    long_name = "a_really_long_entity_name_that_goes_on_and_on_for_a_while"
    one = entity(long_name, field("first_long_field_name_for_an_index", index=True), field("second_long_field_name_for_an_index", index=True))
    schema = build_schema(make_app(one))
    names = [ix.name for ix in schema.table(long_name).indexes]
    assert all(len(n) <= 63 for n in names)
    assert len(set(names)) == len(names)


def test_child_tables_get_parent_columns():
    line = entity("order_line", field("qty", "integer"), is_child=True)
    order = entity("sales_order", field("lines", "table", entity="order_line"), has_status=True)
    schema = build_schema(make_app(order, line))
    table = schema.table("order_line")
    assert {"parent_id", "parent_field", "row_order"} <= set(table.c.keys())
    assert [fk.column.table.name for fk in table.c.parent_id.foreign_keys] == ["sales_order"]
    assert "lines" not in schema.table("sales_order").c
    assert "status" in schema.table("sales_order").c


def test_an_index_declared_twice_is_built_once():
    twice = entity("ticket", field("owner", "link", to="user"), field("code", index=True), indexes=(("owner",), ("code",)))
    names = sorted(ix.name for ix in build_schema(make_app(twice)).table("ticket").indexes)
    assert names == ["ix_ticket_code", "ix_ticket_created_by", "ix_ticket_owner"]


def test_links_and_the_creator_are_indexed_with_the_id_for_newest_first_lists():
    ticket = entity("ticket", field("owner", "link", to="user"), field("code", index=True))
    indexes = {ix.name: [c.name for c in ix.columns] for ix in build_schema(make_app(ticket)).table("ticket").indexes}
    assert indexes == {"ix_ticket_owner": ["owner", "id"], "ix_ticket_created_by": ["created_by", "id"], "ix_ticket_code": ["code"]}
