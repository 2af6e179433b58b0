"""migrate and plan on real SQLite and PostgreSQL databases: what a consultant sees and what the data does."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
from test_storage_apps import PRODUCT, entity, field, make_app, with_fields

from formwork.problems import Place
from formwork.storage import (
    MigrationFailed,
    MigrationRefused,
    build_schema,
    make_engine,
    migrate,
    plan_migration,
    read_state,
)


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def snapshot(engine: sa.Engine) -> dict:
    """Everything a migration could change: tables, columns, indexes, constraints and rows."""
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        shot = {}
        for table in sorted(inspector.get_table_names()):
            columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
            indexes = sorted(i["name"] for i in inspector.get_indexes(table))
            uniques = sorted(u["name"] or "" for u in inspector.get_unique_constraints(table))
            checks = sorted(c["name"] or "" for c in inspector.get_check_constraints(table))
            rows = sorted(map(tuple, conn.execute(sa.text(f'SELECT * FROM "{table}"')).fetchall()), key=repr)
            shot[table] = (columns, indexes, uniques, checks, rows)
        return shot


def insert(engine: sa.Engine, table: str, *rows: dict) -> None:
    with engine.begin() as conn:
        conn.execute(sa.Table(table, sa.MetaData(), autoload_with=conn).insert(), list(rows))


def select(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).fetchall()]


def columns_of(engine: sa.Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return [c["name"] for c in sa.inspect(conn).get_columns(table)]


def test_fresh_migrate_creates_every_table_column_and_constraint(engine):
    app = make_app(PRODUCT, version="3.1")
    plan = migrate(engine, app, git_commit="abc123")
    assert not plan.is_empty and not plan.blocked
    schema = build_schema(app)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert set(schema.metadata.tables) <= set(inspector.get_table_names())
        for table in schema.metadata.tables.values():
            assert [c["name"] for c in inspector.get_columns(table.name)] == list(table.c.keys())
        product = {c["name"]: c for c in inspector.get_columns("product")}
        assert product["title"]["nullable"] is False
        assert product["notes"]["nullable"] is True
        assert {u["name"] for u in inspector.get_unique_constraints("product")} == {"uq_product_sku"}
        assert any(c["name"].startswith("ck_product_kind_") for c in inspector.get_check_constraints("product"))
        fks = {fk["name"]: fk for fk in inspector.get_foreign_keys("fw_user")}
        assert fks["fk_fw_user_department"]["referred_table"] == "fw_department"
        assert fks["fk_fw_user_created_by"]["referred_table"] == "fw_user"
    state = read_state(engine)
    assert state.metadata_hash == app.metadata_hash
    assert state.app_version == "3.1"
    assert state.git_commit == "abc123"
    assert "product" in state.tables and "fw_user" in state.tables


def test_an_up_to_date_database_plans_nothing_and_migrating_again_changes_nothing(engine):
    app = make_app(PRODUCT)
    migrate(engine, app)
    before = snapshot(engine)
    assert plan_migration(engine, app).is_empty
    assert migrate(engine, app).is_empty
    assert snapshot(engine) == before
    assert plan_migration(engine, app).format() == ["Database is up to date: nothing to do."]
    # Same tables under another metadata hash: the full comparison runs and finds nothing either.
    relabelled = dataclasses.replace(app, metadata_hash="another-hash", version="2")
    assert plan_migration(engine, relabelled).is_empty
    assert migrate(engine, relabelled).is_empty
    assert read_state(engine).metadata_hash == "another-hash"


def test_a_change_made_behind_formworks_back_is_found_despite_the_same_metadata(engine):
    app = make_app(with_fields(PRODUCT, field("stock", "integer", index=True)))
    migrate(engine, app)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_product_stock"))
    plan = plan_migration(engine, app)
    assert [(op.kind, op.name) for op in plan.operations] == [("create_index", "ix_product_stock")]
    migrate(engine, app)
    assert plan_migration(engine, app).is_empty


def test_with_other_entities_changed_a_hand_made_change_is_still_found(engine):
    indexed = with_fields(PRODUCT, field("stock", "integer", index=True))
    note = entity("note", field("text", "text"))
    migrate(engine, make_app(indexed, note))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_product_stock"))
    changed = make_app(indexed, with_fields(note, field("author")))
    plan = plan_migration(engine, changed)
    assert sorted((op.kind, op.table, op.column or op.name) for op in plan.operations) == [
        ("add_column", "note", "author"),
        ("create_index", "product", "ix_product_stock"),
    ]
    migrate(engine, changed)
    assert plan_migration(engine, dataclasses.replace(changed, metadata_hash="x")).is_empty


def test_defaults_and_system_columns_fill_themselves(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair"})
    assert select(engine, "SELECT stock, kind, version FROM product") == [(0, "goods", 1)]
    assert select(engine, "SELECT created_at IS NOT NULL FROM product")[0][0] in (1, True)


def test_data_survives_new_fields_entities_and_indexes(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair", "sku": "C-1", "price": Decimal("19.90"), "kind": "goods"})
    grown = with_fields(
        PRODUCT,
        field("colour"),
        field("weight", "decimal", digits=(8, 3), default=0),
        field("stock", "integer", default=0, index=True),
        field("supplier", "link", to="department"),
    )
    supplier_note = entity("supplier_note", field("text", "text"))
    plan = migrate(engine, make_app(grown, supplier_note))
    kinds = {op.kind for op in plan.operations}
    assert {"add_column", "create_table", "create_index", "add_foreign_key"} <= kinds
    assert all(op.safety == "safe" for op in plan.operations)
    [row] = select(engine, "SELECT title, sku, price, colour, weight FROM product")
    assert row[:2] == ("Chair", "C-1") and Decimal(str(row[2])) == Decimal("19.9")
    assert row[3] is None and Decimal(str(row[4])) == 0
    assert plan_migration(engine, make_app(grown, supplier_note)).is_empty


def test_new_choice_and_unique_fields_on_a_table_with_rows(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair"}, {"title": "Desk"})
    grown = with_fields(PRODUCT, field("grade", "choice", options=["a", "b"], default="a"), field("barcode", unique=True))
    migrate(engine, make_app(grown))
    assert select(engine, "SELECT grade, barcode FROM product") == [("a", None), ("a", None)]
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "product", {"title": "Bad", "grade": "z"})
    insert(engine, "product", {"title": "Lamp", "barcode": "123"})
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "product", {"title": "Lamp 2", "barcode": "123"})


def test_extending_the_built_in_user_keeps_every_link_to_it(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "fw_user", {"username": "ann"})
    [(ann,)] = select(engine, "SELECT id FROM fw_user")
    insert(engine, "product", {"title": "Chair", "created_by": ann})
    user = next(e for e in make_app().entities.values() if e.name == "user")
    extended = with_fields(user, field("employee_no", max_length=20, unique=True), field("phone"))
    app = make_app(PRODUCT)
    app = dataclasses.replace(app, entities={**app.entities, "user": extended}, metadata_hash="extended")
    migrate(engine, app)
    assert select(engine, "SELECT username, employee_no FROM fw_user") == [("ann", None)]
    assert select(engine, "SELECT created_by FROM product") == [(ann,)]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM fw_user"))
    assert select(engine, "SELECT created_by FROM product") == [(None,)]
    assert plan_migration(engine, app).is_empty


def test_a_new_link_to_a_new_entity_on_a_table_with_rows(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair"})
    brand = entity("brand", field("name"))
    linked = with_fields(PRODUCT, field("brand", "link", to="brand"))
    migrate(engine, make_app(linked, brand))
    insert(engine, "brand", {"name": "Acme"})
    [(acme,)] = select(engine, "SELECT id FROM brand")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE product SET brand = :b"), {"b": acme})
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE product SET brand = :b"), {"b": acme + 1})


def test_a_text_field_becomes_a_link_when_its_values_are_record_ids(engine):
    base = with_fields(PRODUCT, field("maker", max_length=20))
    migrate(engine, make_app(base))
    insert(engine, "fw_user", {"username": "ann"})
    [(ann,)] = select(engine, "SELECT id FROM fw_user")
    insert(engine, "product", {"title": "Chair", "maker": str(ann)})
    linked = make_app(with_fields(base, field("maker", "link", to="user")))
    plan = migrate(engine, linked)
    assert {op.kind for op in plan.operations} == {"alter_type", "add_foreign_key", "create_index"}
    assert select(engine, "SELECT maker FROM product") == [(ann,)]
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "product", {"title": "Desk", "maker": ann + 1})


def test_required_field_without_default_is_refused_on_a_table_with_rows(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair"}, {"title": "Table"})
    before = snapshot(engine)
    state = read_state(engine)
    barcode = field("barcode", required=True, place=Place("metadata/product.yaml", 12))
    wants_barcode = make_app(with_fields(PRODUCT, barcode, field("colour")))
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, wants_barcode)
    [problem] = refused.value.problems
    assert problem.code == "FW-E501"
    assert "2 row(s)" in problem.message
    assert problem.path == "product.barcode"
    assert problem.format().startswith("metadata/product.yaml:12: product.barcode: [FW-E501]")
    assert refused.value.plan.blocked
    assert snapshot(engine) == before
    assert read_state(engine) == state


def test_required_field_without_default_is_fine_on_an_empty_table(engine):
    migrate(engine, make_app(PRODUCT))
    plan = migrate(engine, make_app(with_fields(PRODUCT, field("barcode", required=True))))
    assert [(op.kind, op.column, op.blocked) for op in plan.operations] == [("add_column", "barcode", False)]
    assert "barcode" in columns_of(engine, "product")


def test_required_field_with_a_default_fills_existing_rows(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair"})
    migrate(engine, make_app(with_fields(PRODUCT, field("unit", required=True, default="pcs"))))
    assert select(engine, "SELECT unit FROM product") == [("pcs",)]


def test_type_change_with_values_that_do_not_convert_is_refused_with_samples(engine):
    base = with_fields(PRODUCT, field("size"))
    migrate(engine, make_app(base))
    insert(engine, "product", *[{"title": f"t{i}", "size": s} for i, s in enumerate(["12", " 7 ", "large", "1.5", "XL", "large"])])
    before = snapshot(engine)
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, make_app(with_fields(base, field("size", "integer"))))
    [problem] = refused.value.problems
    assert problem.code == "FW-E502"
    assert "4 existing value(s) do not convert" in problem.message
    [op] = [op for op in refused.value.plan.operations if op.blocked]
    assert op.detail["samples"] == ["large", "1.5", "XL"]
    assert any("'large', '1.5', 'XL'" in line for line in refused.value.plan.format())
    assert snapshot(engine) == before


def test_type_change_converts_values_when_they_all_parse(engine):
    base = with_fields(PRODUCT, field("size"))
    migrate(engine, make_app(base))
    insert(engine, "product", {"title": "a", "size": "12"}, {"title": "b", "size": " 7 "}, {"title": "c", "size": None})
    plan = migrate(engine, make_app(with_fields(base, field("size", "integer"))))
    [op] = plan.operations
    assert (op.kind, op.safety) == ("alter_type", "needs-data")
    assert select(engine, "SELECT title, size FROM product ORDER BY title") == [("a", 12), ("b", 7), ("c", None)]
    assert plan_migration(engine, make_app(with_fields(base, field("size", "integer")))).is_empty


def test_widening_is_safe_and_narrowing_needs_allow_destructive(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair", "sku": "ABCDEFGHIJKL", "price": Decimal("1234.50")})
    wider = with_fields(PRODUCT, field("sku", max_length=40, unique=True), field("price", "decimal", digits=(14, 3)))
    plan = migrate(engine, make_app(wider))
    assert [op.safety for op in plan.operations] == ["safe", "safe"]

    narrower = with_fields(wider, field("price", "decimal", digits=(8, 2)))
    before = snapshot(engine)
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, make_app(narrower))
    assert [p.code for p in refused.value.problems] == ["FW-E506"]
    assert snapshot(engine) == before
    migrate(engine, make_app(narrower), allow_destructive=True)
    assert [Decimal(str(p)) for (p,) in select(engine, "SELECT price FROM product")] == [Decimal("1234.5")]

    too_short = with_fields(narrower, field("sku", max_length=5, unique=True))
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, make_app(too_short), allow_destructive=True)
    [problem] = refused.value.problems
    assert problem.code == "FW-E502" and "1 existing value(s)" in problem.message
    assert refused.value.plan.operations[0].detail["samples"] == ["ABCDEFGHIJKL"]


def test_conversion_formwork_cannot_do_in_place_is_refused(engine):
    migrate(engine, make_app(PRODUCT))
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, make_app(with_fields(PRODUCT, field("available_from", "integer"))), allow_destructive=True)
    assert [p.code for p in refused.value.problems] == ["FW-E503"]


def test_dropping_a_field_is_refused_unless_allowed_and_then_archived(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair", "notes": "oak"}, {"title": "Desk", "notes": None})
    without_notes = with_fields(PRODUCT, drop=("notes",))
    before = snapshot(engine)
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, make_app(without_notes))
    [problem] = refused.value.problems
    assert problem.code == "FW-E504" and "1 stored value(s)" in problem.message
    assert "--allow-destructive" in problem.hint
    assert snapshot(engine) == before

    plan = migrate(engine, make_app(without_notes), allow_destructive=True)
    [op] = plan.operations
    archive = op.detail["archive"]
    assert archive.startswith("fw_archive_product_notes_")
    assert "notes" not in columns_of(engine, "product")
    ids = dict(select(engine, "SELECT title, id FROM product"))
    assert sorted(select(engine, f'SELECT id, value FROM "{archive}"')) == [(ids["Chair"], "oak"), (ids["Desk"], None)]
    assert plan_migration(engine, make_app(without_notes)).is_empty


def test_dropping_an_entity_is_refused_unless_allowed_and_then_archived(engine):
    order = entity("purchase_order", field("ref"), field("product", "link", to="product"))
    migrate(engine, make_app(PRODUCT, order))
    insert(engine, "purchase_order", {"ref": "PO-1"}, {"ref": "PO-2"})
    before = snapshot(engine)
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, make_app(PRODUCT))
    [problem] = refused.value.problems
    assert problem.code == "FW-E505" and "2 row(s)" in problem.message
    assert snapshot(engine) == before

    plan = migrate(engine, make_app(PRODUCT), allow_destructive=True)
    [op] = plan.operations
    assert op.kind == "drop_table" and op.safety == "destructive"
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
    assert "purchase_order" not in names
    assert sorted(select(engine, f'SELECT ref FROM "{op.detail["archive"]}"')) == [("PO-1",), ("PO-2",)]
    assert "purchase_order" not in read_state(engine).tables


def test_tables_formwork_does_not_manage_are_left_alone(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE legacy_ledger (id INTEGER PRIMARY KEY, amount INTEGER)"))
        conn.execute(sa.text("INSERT INTO legacy_ledger VALUES (1, 10)"))
    plan = migrate(engine, make_app(PRODUCT))
    assert "legacy_ledger" not in {op.table for op in plan.operations}
    assert plan_migration(engine, make_app(PRODUCT), allow_destructive=True).is_empty
    assert select(engine, "SELECT amount FROM legacy_ledger") == [(10,)]


def test_renamed_field_keeps_its_values(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair", "notes": "oak", "kind": "service"})
    renamed = with_fields(PRODUCT, field("remarks", "text", renamed_from="notes"), field("category", "choice", options=["goods", "service"], renamed_from="kind"), drop=("notes", "kind"))
    plan = migrate(engine, make_app(renamed))
    assert {(op.kind, op.old_name, op.column) for op in plan.operations if op.kind == "rename_column"} == {
        ("rename_column", "notes", "remarks"),
        ("rename_column", "kind", "category"),
    }
    assert not any(op.kind in ("drop_column", "add_column") for op in plan.operations)
    assert select(engine, "SELECT remarks, category FROM product") == [("oak", "service")]
    assert plan_migration(engine, make_app(renamed)).is_empty
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "product", {"title": "Bad", "category": "gift"})


def test_renamed_entity_keeps_its_rows_and_links(engine):
    order = entity("purchase_order", field("ref"), field("product", "link", to="product"))
    migrate(engine, make_app(PRODUCT, order))
    insert(engine, "product", {"title": "Chair"})
    [(product_id,)] = select(engine, "SELECT id FROM product")
    insert(engine, "purchase_order", {"ref": "PO-1", "product": product_id})
    article = entity(
        "article",
        *PRODUCT.fields.values(),
        renamed_from="product",
    )
    order_of_articles = entity("purchase_order", field("ref"), field("product", "link", to="article"))
    plan = migrate(engine, make_app(article, order_of_articles))
    assert [(op.kind, op.old_name, op.table) for op in plan.operations if op.kind.startswith("rename")] == [("rename_table", "product", "article")]
    assert not any(op.kind in ("drop_table", "create_table") for op in plan.operations)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert "product" not in inspector.get_table_names()
        [fk] = [fk for fk in inspector.get_foreign_keys("purchase_order") if fk["constrained_columns"] == ["product"]]
        assert fk["referred_table"] == "article"
    assert select(engine, "SELECT title FROM article") == [("Chair",)]
    assert plan_migration(engine, make_app(article, order_of_articles)).is_empty
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "purchase_order", {"ref": "PO-2", "product": product_id + 100})


def test_a_failure_in_the_middle_leaves_the_database_as_it_was(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair", "notes": "oak"})
    before = snapshot(engine)
    state = read_state(engine)
    bigger = with_fields(PRODUCT, field("colour"), field("stock", "integer", default=0, index=True), drop=("notes",))
    extra = entity("warehouse", field("name", index=True))

    # The database fails on the new table's index, which comes after the archived and
    # dropped column, the new column, the rebuilt product table and the new table.
    @sa.event.listens_for(engine, "before_cursor_execute")
    def fail_on_index(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("CREATE INDEX") and "ix_warehouse_name" in statement:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        migrate(engine, make_app(bigger, extra), allow_destructive=True)
    sa.event.remove(engine, "before_cursor_execute", fail_on_index)
    assert snapshot(engine) == before
    assert read_state(engine) == state
    migrate(engine, make_app(bigger, extra), allow_destructive=True)
    assert "colour" in columns_of(engine, "product")


def test_a_statement_the_database_rejects_is_reported_and_rolled_back(engine):
    migrate(engine, make_app(PRODUCT))
    before = snapshot(engine)

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def break_add_column(conn, cursor, statement, parameters, context, executemany):
        if "colour" in statement and statement.startswith("ALTER TABLE"):
            statement = statement.replace("ADD COLUMN", "ADD COLUMN NOT VALID SQL")
        return statement, parameters

    with pytest.raises(MigrationFailed) as failed:
        migrate(engine, make_app(with_fields(PRODUCT, field("colour")), entity("warehouse", field("name"))))
    sa.event.remove(engine, "before_cursor_execute", break_add_column)
    [problem] = failed.value.problems
    assert problem.code == "FW-E530" and "product.colour" in problem.message and "nothing was changed" in problem.message
    assert snapshot(engine) == before


def test_choice_check_and_unique_constraints_hold_in_the_database(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair", "sku": "C-1", "kind": "goods"})
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "product", {"title": "Bad", "kind": "gift"})
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "product", {"title": "Twin", "sku": "C-1"})
    insert(engine, "product", {"title": "No sku"}, {"title": "No sku either"})
    assert select(engine, "SELECT COUNT(*) FROM product") == [(3,)]


def test_changing_choice_options_checks_existing_values(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair", "kind": "service"})
    fewer = with_fields(PRODUCT, field("kind", "choice", options=["goods", "rental"]))
    before = snapshot(engine)
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, make_app(fewer))
    [problem] = refused.value.problems
    assert problem.code == "FW-E510" and "1 row(s)" in problem.message
    assert snapshot(engine) == before
    more = with_fields(PRODUCT, field("kind", "choice", options=["goods", "service", "rental"]))
    migrate(engine, make_app(more))
    insert(engine, "product", {"title": "Van", "kind": "rental"})
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "product", {"title": "Bad", "kind": "gift"})


def test_new_unique_rule_and_required_flag_are_checked_against_the_rows(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair", "notes": "x"}, {"title": "Chair", "notes": None})
    before = snapshot(engine)
    stricter = with_fields(PRODUCT, field("title", max_length=120, required=True, unique=True), field("notes", "text", required=True))
    with pytest.raises(MigrationRefused) as refused:
        migrate(engine, make_app(stricter))
    codes = {p.code: p for p in refused.value.problems}
    assert set(codes) == {"FW-E507", "FW-E508"}
    assert "1 row(s) have no value" in codes["FW-E507"].message
    assert "Chair" in refused.value.plan.format()[-2] or any("'Chair'" in line for line in refused.value.plan.format())
    assert snapshot(engine) == before


def test_child_rows_go_with_their_parent(engine):
    line = entity("order_line", field("qty", "integer"), is_child=True)
    order = entity("sales_order", field("lines", "table", entity="order_line"))
    migrate(engine, make_app(order, line))
    insert(engine, "sales_order", {"id": 1})
    insert(engine, "order_line", {"parent_id": 1, "parent_field": "lines", "row_order": 0, "qty": 3})
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM sales_order"))
    assert select(engine, "SELECT COUNT(*) FROM order_line") == [(0,)]


def test_plan_is_plain_json_ready_data(engine):
    migrate(engine, make_app(PRODUCT))
    insert(engine, "product", {"title": "Chair"})
    plan = plan_migration(engine, make_app(with_fields(PRODUCT, field("barcode", required=True))))
    data = json.loads(json.dumps(plan.as_dict()))
    assert data["blocked"] is True
    [op] = data["operations"]
    assert op["kind"] == "add_column" and op["safety"] == "needs-data" and op["detail"]["rows"] == 1
    assert plan.format()[0].startswith("~ [needs-data] add_column product.barcode")
