"""The CRUD screens, through Flask's test client and through a real Chromium.

Each test builds a small deployment in a temporary folder, migrates it on the
test database (SQLite file and PostgreSQL) and serves it with ``create_app``.
"""

from __future__ import annotations

import re
import stat
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import flask
import pytest
from browser import served_page
from web_login import PASSWORD, screen_client
from werkzeug.test import Client

from formwork.metadata import compile_project
from formwork.metadata.project import load_project
from formwork.records import Actor, RecordQuery
from formwork.storage import make_engine, migrate
from formwork.web import Runtime, create_app

PROJECT_FILES = {
    "formwork.yaml": """
        name: shop
        label: {en: Corner Shop}
        metadata: [metadata]
        """,
    "metadata/item.yaml": """
        kind: entity
        name: item
        label: {en: Stock item}
        title_field: name
        fields:
          name: {type: string, label: Item name, required: true, max_length: 80}
          quantity: {type: integer, label: Quantity, min: 0, required: true}
          price: {type: decimal, digits: [10, 2], label: Unit price}
          kind:
            type: choice
            label: Kind
            options: [{value: food, label: Food}, {value: tool, label: Tool}]
            default: food
          owner: {type: link, to: user, label: Owner}
          due: {type: date, label: Restock by}
          counted_at: {type: datetime, label: Last counted}
          notes: {type: text, label: Notes, help: "Plain <b>notes</b>"}
        hooks: {before_save: shop.check_item}
        """,
    "plugins/shop.py": """
        from formwork.plugins import PluginError, hook


        @hook("shop.check_item")
        def check_item(record, ctx):
            if record.get("price") == 0:
                raise PluginError("free items are not sold here", field="price")
            if record.get("name") == "crash":
                raise RuntimeError("a bug in the plugin")
        """,
    "metadata/item_form.yaml": """
        kind: form
        name: item
        entity: item
        layout:
          - section: Basics
            fields: [name, kind, quantity, price]
          - section: Details
            fields: [owner, due, counted_at, notes]
        list: {columns: [name, kind, quantity, owner], search: [name], sort: [name], filters: [kind]}
        """,
}


def write_project(root: Path) -> Path:
    for name, text in PROJECT_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@dataclass
class Served:
    app: flask.Flask
    runtime: Runtime

    def client(self, **user):
        """A test client logged in as an admin (a new one per client)."""
        self.logins = getattr(self, "logins", 0) + 1
        return screen_client(self.app, f"admin{self.logins}", **user)

    def items(self) -> list[dict]:
        return self.runtime.records.list("item", Actor.system(), RecordQuery(sort=("id",)))

    def add_item(self, **values) -> dict:
        values.setdefault("quantity", 1)
        return self.runtime.records.create("item", values, Actor.system(), "test")


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[Served]:
    root = write_project(tmp_path / "shop")
    project = load_project(root, environ={"DATABASE_URL": db_url})
    app_model = compile_project(project)
    engine = make_engine(db_url)
    migrate(engine, app_model, allow_destructive=False)
    app = create_app(project, app_model=app_model, engine=engine, config={"TESTING": True})
    yield Served(app, app.extensions["formwork"])
    engine.dispose()


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html
    )
    assert match, "the form carries no CSRF token"
    return match.group(1)


def hidden_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def field_errors(html: str) -> list[str]:
    return [e.strip() for e in re.findall(r"<li>([^<]+)</li>", "".join(re.findall(r'class="invalid-feedback">(.*?)</div>', html, re.S)))]


def test_index_health_and_every_entity_has_a_screen(served: Served) -> None:
    client = served.client()
    home = client.get("/").get_data(as_text=True)
    assert "Corner Shop" in home
    for label in ("Stock item", "User", "Department"):
        assert label in home
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    for entity in ("item", "user", "department"):
        page = client.get(f"/admin/{entity}/")
        assert page.status_code == 200, entity
        assert client.get(f"/admin/{entity}/new/").status_code == 200, entity
    assert "The database has not been migrated" not in home


def test_list_shows_records_with_titles_sorted_and_searchable(served: Served) -> None:
    owner = served.runtime.records.create("user", {"username": "mei", "full_name": "Mei Lin"}, Actor.system(), "test")
    served.add_item(name="Saw", kind="tool", owner=owner["id"])
    served.add_item(name="Apple <b>red</b>", quantity=12)
    client = served.client()
    page = client.get("/admin/item/").get_data(as_text=True)
    assert page.index("Apple") < page.index("Saw"), "the form's list sort (by name) applies"
    assert "Mei Lin" in page and "Tool" in page
    assert "Apple &lt;b&gt;red&lt;/b&gt;" in page, "record values are escaped"
    found = client.get("/admin/item/?search=saw").get_data(as_text=True)
    assert "Saw" in found and "Apple" not in found
    tools = client.get("/admin/item/?flt1_0=tool").get_data(as_text=True)
    assert "Saw" in tools and "Apple" not in tools and "List (1)" in tools


def test_create_writes_through_the_record_service(served: Served) -> None:
    client = served.client()
    form = client.get("/admin/item/new/").get_data(as_text=True)
    assert form.index("Basics") < form.index("Item name") < form.index("Details") < form.index("Restock by")
    assert "Plain &lt;b&gt;notes&lt;/b&gt;" in form, "help text from metadata is escaped"
    response = client.post(
        "/admin/item/new/",
        data={"csrf_token": csrf_token(form), "name": "Hammer", "quantity": "3", "price": "9.50", "kind": "tool",
              "due": "2030-01-31", "counted_at": "2030-01-02T08:30"},
    )
    assert response.status_code == 302
    [item] = served.items()
    assert (item["name"], item["quantity"], item["price"], item["kind"], item["version"]) == ("Hammer", 3, Decimal("9.50"), "tool", 1)
    assert (item["due"], item["counted_at"]) == (date(2030, 1, 31), datetime(2030, 1, 2, 8, 30, tzinfo=UTC))
    assert item["owner"] is None and item["notes"] is None
    details = client.get(f"/admin/item/details/?id={item['id']}").get_data(as_text=True)
    assert "2030-01-02 08:30 UTC" in details and "Last counted (UTC)" in form


def test_builtin_department_and_user_screens_with_links(served: Served) -> None:
    client = served.client()
    form = client.get("/admin/department/new/").get_data(as_text=True)
    assert client.post("/admin/department/new/", data={"csrf_token": csrf_token(form), "name": "Ops", "code": "OPS"}).status_code == 302
    [ops] = served.runtime.records.list("department", Actor.system(), RecordQuery())
    form = client.get("/admin/user/new/").get_data(as_text=True)
    assert f'<option value="{ops["id"]}">Ops</option>' in form
    active = re.search(r'<input[^>]*id="active"[^>]*>', form)
    assert active and "checked" in active.group(0), "the checkbox shows the default (true)"
    response = client.post(
        "/admin/user/new/", data={"csrf_token": csrf_token(form), "username": "kim", "department": str(ops["id"]), "active": "y"}
    )
    assert response.status_code == 302
    [kim] = served.runtime.records.list("user", Actor.system(), RecordQuery(filters={"username": ["kim"]}))
    assert (kim["username"], kim["department"], kim["active"]) == ("kim", ops["id"], True)
    listing = client.get("/admin/user/").get_data(as_text=True)
    assert "kim" in listing and "Ops" in listing


def test_create_with_a_bad_value_shows_the_error_and_writes_nothing(served: Served) -> None:
    client = served.client()
    form = client.get("/admin/item/new/").get_data(as_text=True)
    response = client.post("/admin/item/new/", data={"csrf_token": csrf_token(form), "name": "Nails", "quantity": "-5", "kind": "food"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    errors = field_errors(page)
    assert errors == ["must be at least 0"]
    assert "The record was not created: please correct the marked fields." in page
    assert 'value="Nails"' in page, "the typed values stay on the form"
    assert served.items() == []


def test_required_fields_are_judged_by_the_record_service(served: Served) -> None:
    client = served.client()
    form = client.get("/admin/item/new/").get_data(as_text=True)
    assert 'id="name" maxlength="80" name="name" required' in form, "the browser is told too"
    response = client.post("/admin/item/new/", data={"csrf_token": csrf_token(form), "name": " ", "quantity": "", "kind": ""})
    page = response.get_data(as_text=True)
    assert field_errors(page) == ["is required", "is required"]
    assert served.items() == []


def test_plugin_refusals_and_failures_are_shown_and_nothing_is_written(served: Served) -> None:
    client = served.client()
    form = client.get("/admin/item/new/").get_data(as_text=True)
    refused = client.post("/admin/item/new/", data={"csrf_token": csrf_token(form), "name": "Gift", "quantity": "1", "price": "0"})
    assert field_errors(refused.get_data(as_text=True)) == ["free items are not sold here"]
    crashed = client.post("/admin/item/new/", data={"csrf_token": csrf_token(form), "name": "crash", "quantity": "1"})
    page = crashed.get_data(as_text=True)
    assert crashed.status_code == 200
    assert "The record was not created: the change was not saved because a plugin failed (error id" in page
    assert "a bug in the plugin" not in page and "Traceback" not in page
    assert served.items() == []


def test_create_without_csrf_token_is_refused(served: Served) -> None:
    client = served.client()
    client.get("/admin/item/new/")
    response = client.post("/admin/item/new/", data={"name": "Nails", "quantity": "1", "kind": "food"})
    # the app-wide CSRF check refuses it before the screen runs
    assert response.status_code == 403
    assert "This form has expired" in response.get_data(as_text=True)
    assert served.items() == []


def test_edit_saves_and_bumps_the_version(served: Served) -> None:
    item = served.add_item(name="Rope", quantity=2)
    client = served.client()
    form = client.get(f"/admin/item/edit/?id={item['id']}").get_data(as_text=True)
    assert hidden_value(form, "fw_version") == "1"
    response = client.post(
        f"/admin/item/edit/?id={item['id']}",
        data={"csrf_token": csrf_token(form), "fw_version": "1", "name": "Rope 10m", "quantity": "4", "kind": "tool"},
    )
    assert response.status_code == 302
    [saved] = served.items()
    assert (saved["name"], saved["quantity"], saved["kind"], saved["version"]) == ("Rope 10m", 4, "tool", 2)
    without_version = client.post(
        f"/admin/item/edit/?id={item['id']}", data={"csrf_token": csrf_token(form), "name": "Rope", "quantity": "5", "kind": "tool"}
    )
    assert "send the version you loaded" in without_version.get_data(as_text=True)
    assert served.items() == [saved]


def test_stale_edit_is_refused_with_a_message(served: Served) -> None:
    item = served.add_item(name="Glue", quantity=2)
    client = served.client()
    form = client.get(f"/admin/item/edit/?id={item['id']}").get_data(as_text=True)
    served.runtime.records.update("item", item["id"], {"quantity": 7}, Actor.system(), "test", version=1)
    response = client.post(
        f"/admin/item/edit/?id={item['id']}",
        data={"csrf_token": csrf_token(form), "fw_version": hidden_value(form, "fw_version"), "name": "Glue", "quantity": "9", "kind": "food"},
    )
    assert response.status_code == 200
    assert "Someone else saved this record meanwhile" in response.get_data(as_text=True)
    [saved] = served.items()
    assert (saved["quantity"], saved["version"]) == (7, 2)


def test_details_and_delete(served: Served) -> None:
    item = served.add_item(name="Tape", quantity=1, notes="sticky")
    client = served.client()
    details = client.get(f"/admin/item/details/?id={item['id']}").get_data(as_text=True)
    assert "sticky" in details and "Version" in details
    listing = client.get("/admin/item/").get_data(as_text=True)
    response = client.post("/admin/item/delete/", data={"csrf_token": csrf_token(listing), "id": str(item["id"]), "url": "/admin/item/"})
    assert response.status_code == 302
    assert served.items() == []
    assert client.get(f"/admin/item/details/?id={item['id']}").status_code == 302


def test_deleting_a_record_others_link_to_is_refused(served: Served) -> None:
    owner = served.runtime.records.create("user", {"username": "mei"}, Actor.system(), "test")
    served.add_item(name="Saw", owner=owner["id"])
    client = served.client()
    listing = client.get("/admin/user/").get_data(as_text=True)
    response = client.post(
        "/admin/user/delete/", data={"csrf_token": csrf_token(listing), "id": str(owner["id"]), "url": "/admin/user/"}, follow_redirects=True
    )
    assert "The record was not deleted: cannot be deleted: still used by 1 stock item" in response.get_data(as_text=True)
    assert served.runtime.records.count("user", Actor.system(), RecordQuery(filters={"username": ["mei"]})) == 1


def test_unmigrated_database_shows_a_banner_and_secret_key_is_kept(tmp_path: Path) -> None:
    root = write_project(tmp_path / "shop")
    project = load_project(root, environ={"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})
    app = create_app(project, config={"TESTING": True})
    assert "has not been migrated" in app.test_client().get("/", follow_redirects=True).get_data(as_text=True)
    secret = project.instance_dir / "secret_key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert app.secret_key == secret.read_text().strip()
    assert create_app(project, config={"TESTING": True}).secret_key == app.secret_key


def test_wsgi_entry_point_serves_the_deployment_of_formwork_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import formwork.web.app as web_app

    root = write_project(tmp_path / "shop")
    monkeypatch.setenv("FORMWORK_PROJECT", str(root))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'wsgi.db'}")
    monkeypatch.setattr(web_app, "_wsgi_app", None)
    response = Client(web_app.wsgi).get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["app"] == "shop" and response.get_json()["schema_current"] is False


@pytest.fixture
def browser_page(served: Served) -> Iterator[tuple[object, str]]:
    with served_page(served.app) as opened:
        yield opened


@pytest.mark.browser
def test_screens_in_a_browser(served: Served, browser_page: tuple) -> None:
    page, base = browser_page
    served.add_item(name="Bolt", quantity=100)

    # a visitor lands on the login page and comes back to the page asked for
    served.client(password=PASSWORD)
    page.goto(f"{base}/")
    assert "/login" in page.url
    page.fill("input[name=username]", "admin1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")
    page.click("text=Stock item")
    assert page.locator("table.model-list").inner_text().count("Bolt") == 1

    # create with a bad value: the message sits under the field, nothing is stored
    page.goto(f"{base}/admin/item/new/")
    page.fill("#name", "Screw")
    page.fill("#quantity", "-1")
    page.click("input[type=submit][value=Save]")
    assert page.locator("#quantity.is-invalid").count() == 1
    assert page.locator(".invalid-feedback").inner_text().strip() == "must be at least 0"
    assert [i["name"] for i in served.items()] == ["Bolt"]

    # correct it and save
    page.fill("#quantity", "40")
    page.select_option("#kind", "tool")
    page.click("input[type=submit][value=Save]")
    page.wait_for_url(re.compile(r"/admin/item/(\?.*)?$"))
    assert "Screw" in page.locator("table.model-list").inner_text()
    screw = next(i for i in served.items() if i["name"] == "Screw")
    assert (screw["quantity"], screw["kind"]) == (40, "tool")

    # edit
    page.goto(f"{base}/admin/item/edit/?id={screw['id']}")
    page.fill("#quantity", "41")
    page.click("input[type=submit][value=Save]")
    page.wait_for_url(re.compile(r"/admin/item/(\?.*)?$"))
    assert next(i for i in served.items() if i["id"] == screw["id"])["quantity"] == 41

    # stale edit: someone saves between loading the form and saving it
    page.goto(f"{base}/admin/item/edit/?id={screw['id']}")
    served.runtime.records.update("item", screw["id"], {"quantity": 50}, Actor.system(), "test", version=2)
    page.fill("#quantity", "42")
    page.click("input[type=submit][value=Save]")
    assert "Someone else saved this record meanwhile" in page.locator(".alert").all_inner_texts()[-1]
    assert next(i for i in served.items() if i["id"] == screw["id"])["quantity"] == 50

    # delete from the list (confirm dialog accepted)
    page.goto(f"{base}/admin/item/")
    page.once("dialog", lambda dialog: dialog.accept())
    row = page.locator("tr", has_text="Screw")
    row.locator("button[title='Delete Record']").click()
    page.wait_for_load_state()
    assert [i["name"] for i in served.items()] == ["Bolt"]
    assert "Screw" not in page.locator("table.model-list").inner_text()
