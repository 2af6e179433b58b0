"""The example deployment's compiled App on a real database: every entity gets its table."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from formwork.metadata import load_app
from formwork.storage import build_schema, make_engine, migrate, plan_migration, read_state


def test_example_app_migrates_and_then_plans_nothing(example_project, db_url):
    app = load_app(example_project)
    engine = make_engine(db_url)
    plan = migrate(engine, app, git_commit="0123abc")
    assert not plan.blocked
    schema = build_schema(app)
    with engine.connect() as conn:
        assert set(schema.metadata.tables) <= set(sa.inspect(conn).get_table_names())
    assert read_state(engine).metadata_hash == app.metadata_hash
    assert plan_migration(engine, app).is_empty
    # The full comparison (not only the recorded fingerprint) agrees.
    assert plan_migration(engine, dataclasses.replace(app, metadata_hash="x")).is_empty
    engine.dispose()
