"""Every screen of the example deployment renders, on its seeded demo data."""

from __future__ import annotations

from pathlib import Path

from web_login import logged_in

from formwork.metadata import compile_project
from formwork.metadata.project import load_project
from formwork.records import Actor, RecordQuery
from formwork.seeding import seed_demo
from formwork.storage import make_engine, migrate
from formwork.web import build_runtime, create_app


def test_every_screen_of_the_example_renders(example_project: Path, db_url: str) -> None:
    project = load_project(example_project, environ={"DATABASE_URL": db_url})
    app_model = compile_project(project)
    engine = make_engine(db_url)
    migrate(engine, app_model, allow_destructive=False)
    seed_demo(project, build_runtime(project, app_model, engine).records)
    app = create_app(project, app_model=app_model, engine=engine, config={"TESTING": True})
    records = app.extensions["formwork"].records
    # the demo seed's admin, logged in
    client = logged_in(app.test_client(), app.extensions["formwork"], "admin")

    home = client.get("/").get_data(as_text=True)
    assert "Huaxin Trading" in home and "Purchase request" in home
    failures = []
    for name, entity in app_model.entities.items():
        pages = [f"/admin/{name}/"]
        if not entity.is_child:
            pages.append(f"/admin/{name}/new/")
        first = records.list(name, Actor.system(), RecordQuery(limit=1))
        if first:
            pages.append(f"/admin/{name}/details/?id={first[0]['id']}")
            if not entity.is_child:
                pages.append(f"/admin/{name}/edit/?id={first[0]['id']}")
        failures += [(page, status) for page in pages if (status := client.get(page).status_code) != 200]
    assert failures == []

    listing = client.get("/admin/purchase_request/").get_data(as_text=True)
    assert "PR-2026-00001" in listing and "Approved" in listing, "numbers, titles and choice labels show"
    engine.dispose()
