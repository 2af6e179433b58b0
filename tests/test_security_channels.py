"""The roles of metadata enforced the same way in every channel of a served deployment
(REST API, screens, export), with real credentials, on SQLite and PostgreSQL.

The matrix runs over the example deployment: every role x entity x action x channel, on one
sampled record per entity, checked against what the grants say. The attack tests use the
small helpdesk deployment of ``security_world``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from security_world import PASSWORD, build_world
from web_login import logged_in, login_form, token_for, with_token

from formwork.metadata import compile_project
from formwork.metadata.model import ADMIN_ROLE
from formwork.metadata.project import load_project
from formwork.records import Actor, PermissionDenied, RecordNotFound, RecordQuery
from formwork.security import load_actor
from formwork.security.accounts import Accounts
from formwork.seeding import seed_demo
from formwork.storage import make_engine, migrate
from formwork.web import build_runtime, create_app

# ----------------------------------------------------------------------------- the matrix


@pytest.fixture
def example(example_project: Path, db_url: str) -> Iterator[Any]:
    project = load_project(example_project, environ={"DATABASE_URL": db_url})
    app_model = compile_project(project)
    engine = make_engine(db_url)
    migrate(engine, app_model, allow_destructive=False)
    seed_demo(project, build_runtime(project, app_model, engine).records)
    app = create_app(project, app_model=app_model, engine=engine, config={"TESTING": True})
    yield app
    engine.dispose()


def _reads(records: Any, entity: str, record_id: int, actor: Actor) -> dict[str, Any] | None:
    """The record as the actor's roles show it, or None when it is outside them."""
    try:
        return records.get(entity, record_id, actor)
    except (RecordNotFound, PermissionDenied):
        return None


def test_every_role_entity_action_and_channel_agrees_with_the_grants(example: Any) -> None:
    runtime = example.extensions["formwork"]
    app_model, records, policy = runtime.app_model, runtime.records, runtime.records.policy
    accounts = Accounts(records)
    department = accounts.list_departments()[0].name
    system = Actor.system()
    samples = {name: found[0] for name, entity in app_model.entities.items()
               if not entity.is_child and (found := records.list(name, system, RecordQuery(sort=("id",), limit=1)))}
    assert {"purchase_request", "expense_claim", "product", "vendor"} <= set(samples)
    failures: list[str] = []
    for role in sorted(app_model.roles):
        username = f"matrix_{role}"
        accounts.create_user(username, None, roles=[role], department=department)
        with runtime.engine.connect() as conn:
            actor = load_actor(conn, app_model, runtime.schema, accounts.user_id(conn, username))
        api = with_token(example.test_client(), token_for(runtime, username))
        screens = logged_in(example.test_client(), runtime, username)
        for name, sample in samples.items():
            table = runtime.schema.tables[name]
            allowed = {action for action in ("create", "read", "update", "delete", "export")
                       if policy.accesses(name, actor, table, action)}
            if role == ADMIN_ROLE:
                assert allowed == {"create", "read", "update", "delete", "export"}
            hidden = policy.hidden_fields(name, actor)
            seen = _reads(records, name, sample["id"], actor)

            def expect(channel: str, status: int, wanted: set[int] | int, note: str = "", where: str = f"{role} {name}") -> None:
                wanted_set = {wanted} if isinstance(wanted, int) else wanted
                if status not in wanted_set:
                    failures.append(f"{where} {channel}: {status}, expected {sorted(wanted_set)} {note}")

            listing = api.get(f"/api/v1/{name}?limit=20&sort=id")
            expect("api list", listing.status_code, 200 if "read" in allowed else 403)
            if listing.status_code == 200:
                items = listing.get_json()["items"]
                mine = records.list(name, actor, RecordQuery(sort=("id",), limit=20))
                if [i["id"] for i in items] != [r["id"] for r in mine]:
                    failures.append(f"{role} {name} api list: other rows than the record service gives")
                leaked = {key for item in items for key in item} & {f for f in hidden if all(f not in r for r in mine)}
                if leaked:
                    failures.append(f"{role} {name} api list: hidden fields {sorted(leaked)} shown")
            got = api.get(f"/api/v1/{name}/{sample['id']}")
            expect("api get", got.status_code, 403 if "read" not in allowed else 200 if seen else 404)
            if got.status_code == 200 and seen is not None and set(got.get_json()) - {"id", "version"} - set(seen):
                failures.append(f"{role} {name} api get: fields beyond what the roles show")
            before = records.count(name, system, RecordQuery())
            created = api.post(f"/api/v1/{name}", json={})
            denied = created.status_code == 403 and "may not create" in created.get_data(as_text=True)
            if ("create" in allowed) == denied:
                failures.append(f"{role} {name} api create: {created.status_code}, create granted: {'create' in allowed}")
            if created.status_code == 201:
                records.delete(name, created.get_json()["id"], system, "test")
            elif records.count(name, system, RecordQuery()) != before:
                failures.append(f"{role} {name} api create: refused but written")
            # a stale version: a permitted write stops at the version check (409), nothing changes
            for method, action in (("patch", "update"), ("delete", "delete")):
                response = getattr(api, method)(f"/api/v1/{name}/{sample['id']}?version=999999" if method == "delete" else f"/api/v1/{name}/{sample['id']}",
                                                json={"version": 999999} if method == "patch" else None)
                if "read" not in allowed:
                    expect(f"api {action}", response.status_code, {403, 404})
                elif action not in allowed:
                    # an action not granted on the entity: 403 whatever the id (it tells nothing about rows)
                    expect(f"api {action}", response.status_code, 403)
                elif seen is None:
                    expect(f"api {action}", response.status_code, 404)
                else:
                    expect(f"api {action}", response.status_code, {409, 403}, "(409, or 403 outside the rows of the grant)")
            exported = api.get(f"/api/v1/{name}/export?headers=names")
            expect("export", exported.status_code, 200 if {"read", "export"} <= allowed else 403)
            if exported.status_code == 200:
                header = next(csv.reader(io.StringIO(exported.get_data(as_text=True))))
                if set(header) & hidden:
                    failures.append(f"{role} {name} export: hidden columns {sorted(set(header) & hidden)}")
            page = screens.get(f"/admin/{name}/")
            expect("screen list", page.status_code, 200 if "read" in allowed else 403)
            details = screens.get(f"/admin/{name}/details/?id={sample['id']}")
            expect("screen details", details.status_code, 200 if "read" in allowed and seen else 302 if "read" in allowed else 403)
    assert records.count("purchase_request", system, RecordQuery()) >= 1
    assert failures == [], "\n".join(failures)


# ----------------------------------------------------------------------------- attacks

PEOPLE = {"alice": (("author",), "SALES"), "bob": (("dept",), "SALES"), "carol": (("head",), "HQ"), "dave": (("reader",), "OPS"),
          "root": (("admin",), "HQ")}


@pytest.fixture
def helpdesk(tmp_path: Path, db_url: str) -> Iterator[Any]:
    world = build_world(tmp_path / "helpdesk", db_url, PEOPLE)
    app = create_app(world.project, app_model=world.app, engine=world.engine, config={"TESTING": True})
    runtime = app.extensions["formwork"]
    world.tickets = {
        "alice": world.ticket("Alice's printer", "alice", "SALES", secret_note="pin 4711", budget="10.00"),
        "other": world.ticket("Carol's laptop", "root", "HQ", secret_note="zebra", budget="99.00"),
    }
    world.app_ = app
    world.client = lambda username: with_token(app.test_client(), token_for(runtime, username))
    yield world
    world.engine.dispose()


def test_another_users_record_by_id_is_404_and_unchanged(helpdesk: Any) -> None:
    alice = helpdesk.client("alice")
    other = helpdesk.tickets["other"]
    before = helpdesk.snapshot()
    for response in (alice.get(f"/api/v1/ticket/{other['id']}"), alice.patch(f"/api/v1/ticket/{other['id']}", json={"title": "mine", "version": 1}),
                     alice.delete(f"/api/v1/ticket/{other['id']}?version=1"), alice.get(f"/api/v1/ticket/{other['id']}/workflow")):
        assert response.status_code == 404, response.get_json()
    missing = alice.get("/api/v1/ticket/999999")
    assert alice.get(f"/api/v1/ticket/{other['id']}").get_json() == missing.get_json() | {"errors": [
        {**missing.get_json()["errors"][0], "message": missing.get_json()["errors"][0]["message"].replace("999999", str(other["id"]))}]}
    assert [t["id"] for t in alice.get("/api/v1/ticket").get_json()["items"]] == [helpdesk.tickets["alice"]["id"]]
    assert helpdesk.snapshot()["ticket"] == before["ticket"]


def test_hidden_values_cannot_be_guessed_through_filters_sort_expand_or_export(helpdesk: Any) -> None:
    dave = helpdesk.client("dave")  # reader: every ticket, secret_note hidden
    items = dave.get("/api/v1/ticket?sort=id").get_json()["items"]
    assert len(items) == 2 and all("secret_note" not in item for item in items)
    probes = [
        "/api/v1/ticket?secret_note=zebra",
        "/api/v1/ticket?secret_note__startswith=z",
        "/api/v1/ticket?filter=secret_note == 'zebra'",
        "/api/v1/ticket?filter=startswith(secret_note, 'z')",
        "/api/v1/ticket?sort=secret_note",
        "/api/v1/ticket?sort=-secret_note",
        "/api/v1/ticket?search=zebra&search_fields=secret_note",
        "/api/v1/ticket/export?filter=secret_note == 'zebra'",
    ]
    for url in probes:
        response = dave.get(url)
        assert response.status_code in (400, 403), (url, response.status_code, response.get_data(as_text=True)[:300])
        assert "zebra" not in response.get_data(as_text=True) and "4711" not in response.get_data(as_text=True)
    assert dave.get(f"/api/v1/ticket/{helpdesk.tickets['other']['id']}?fields=title,secret_note").get_json().get("secret_note") is None
    assert dave.get("/api/v1/ticket/export").status_code == 403, "reader has no export grant"
    carol = helpdesk.client("carol")  # head: reads and exports the department tree, secret_note hidden
    exported = carol.get("/api/v1/ticket/export?headers=names")
    assert exported.status_code == 200
    text = exported.get_data(as_text=True)
    assert "secret_note" not in text.splitlines()[0] and "zebra" not in text and "4711" not in text
    assert len(text.strip().splitlines()) == 3, "both tickets lie in carol's department tree"
    for url in ("/api/v1/ticket/export?filter=secret_note == 'zebra'", "/api/v1/ticket?secret_note=zebra", "/api/v1/ticket?sort=secret_note"):
        probe = carol.get(url)
        assert probe.status_code == 400 and "zebra" not in probe.get_data(as_text=True), (url, probe.status_code)
    # a link expanded to a record the reader may not read shows its id only
    alice = helpdesk.client("alice")
    expanded = alice.get(f"/api/v1/ticket/{helpdesk.tickets['alice']['id']}?expand=department,owner").get_json()
    # alice's roles do not reach users or departments: the links show their ids only
    assert expanded["owner"] == {"id": helpdesk.users["alice"]} and expanded["department"] == {"id": helpdesk.departments["SALES"]}
    root_view = helpdesk.client("root").get(f"/api/v1/ticket/{helpdesk.tickets['alice']['id']}?expand=owner").get_json()
    assert root_view["owner"]["username"] == "alice"
    memo = helpdesk.records.create("memo", {"text": "root's memo"}, helpdesk.actor("root"), "test")
    assert helpdesk.client("dave").get(f"/api/v1/memo/{memo['id']}").status_code == 404
    with_link = dave.get(f"/api/v1/ticket/{helpdesk.tickets['other']['id']}?expand=owner").get_json()
    assert set(with_link["owner"]) == {"id"} or "secret_note" not in with_link["owner"]


def test_mass_assignment_of_read_only_and_system_fields_is_refused(helpdesk: Any) -> None:
    alice = helpdesk.client("alice")  # author: own tickets, budget read-only
    ticket = helpdesk.tickets["alice"]
    before = helpdesk.snapshot()["ticket"]
    for values in ({"budget": "1000000.00"}, {"id": 5}, {"created_by": helpdesk.users["root"]}, {"created_at": "2000-01-01T00:00:00Z"},
                   {"owner": helpdesk.users["root"]}):
        response = alice.patch(f"/api/v1/ticket/{ticket['id']}", json={**values, "version": ticket["version"]})
        assert response.status_code in (403, 422), (values, response.get_json())
    created = alice.post("/api/v1/ticket", json={"title": "x", "owner": helpdesk.users["alice"], "budget": "5.00"})
    assert created.status_code in (403, 422)
    bob = helpdesk.client("bob")  # dept: title read-only, secret_note hidden
    for values in ({"title": "renamed"}, {"secret_note": "overwritten"}):
        response = bob.patch(f"/api/v1/ticket/{ticket['id']}", json={**values, "version": ticket["version"]})
        assert response.status_code in (403, 422), (values, response.get_json())
    assert helpdesk.snapshot()["ticket"] == before


def test_forms_without_csrf_and_sessions_of_deactivated_users_are_refused(helpdesk: Any) -> None:
    runtime = helpdesk.app_.extensions["formwork"]
    client = logged_in(helpdesk.app_.test_client(), runtime, "root")
    assert client.get("/admin/ticket/").status_code == 200
    before = helpdesk.snapshot()["ticket"]
    refused = client.post("/admin/ticket/new/", data={"title": "no token"})
    assert refused.status_code == 403 and helpdesk.snapshot()["ticket"] == before
    session_api = client.post("/api/v1/ticket", json={"title": "no header"})
    assert session_api.status_code == 403 and helpdesk.snapshot()["ticket"] == before
    bob = logged_in(helpdesk.app_.test_client(), runtime, "bob")
    assert bob.get("/admin/ticket/").status_code == 200
    helpdesk.accounts.deactivate("bob")
    assert bob.get("/admin/ticket/").status_code == 302
    assert "/login" in bob.get("/admin/ticket/").headers["Location"]


def test_revoked_tokens_and_malformed_credentials_are_401(helpdesk: Any) -> None:
    runtime = helpdesk.app_.extensions["formwork"]
    issued = helpdesk.accounts.create_token("alice")
    client = helpdesk.app_.test_client()
    good = {"Authorization": f"Bearer {issued.token}"}
    assert client.get("/api/v1/ticket", headers=good).status_code == 200
    helpdesk.accounts.revoke_token(issued.id)
    headers = [
        good,
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWxpY2U6cGFzcw=="},
        {"Authorization": "Bearer " + "a" * 10_240},
        {"Authorization": "Bearer fw_" + "é" * 43},
        {"Authorization": "Bearer fw_' OR '1'='1"},
        {"Authorization": "x" * 10_240},
        {},
    ]
    for header in headers:
        response = client.get("/api/v1/ticket", headers=header)
        assert response.status_code == 401, (str(header)[:60], response.status_code)
        assert response.get_json()["errors"][0]["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/api/v1/ticket", json={"title": "x"}, headers={"Authorization": "Bearer"}).status_code == 401
    assert runtime.records.count("ticket", Actor.system(), RecordQuery()) == 2


def test_sql_injection_through_filter_and_sort_is_a_400(helpdesk: Any) -> None:
    root = helpdesk.client("root")
    # the token's last use is the one thing a read may change
    before = {name: rows for name, rows in helpdesk.snapshot().items() if name != "fw_token"}
    for url in ("/api/v1/ticket?sort=title;DROP TABLE ticket", "/api/v1/ticket?sort=1)--", "/api/v1/ticket?title=x' OR '1'='1",
                "/api/v1/ticket?filter=title == 'x' or 1 == 1; DROP TABLE ticket", "/api/v1/ticket?filter=__import__('os')",
                "/api/v1/ticket?sort=(select 1)"):
        response = root.get(url)
        assert response.status_code in (200, 400), (url, response.status_code)
        if response.status_code == 200:
            assert response.get_json()["items"] == []
    assert {name: rows for name, rows in helpdesk.snapshot().items() if name != "fw_token"} == before


def test_the_login_form_leads_back_and_logout_ends_the_session(helpdesk: Any) -> None:
    helpdesk.accounts.set_password("alice", PASSWORD)
    client = helpdesk.app_.test_client()
    first = client.get("/admin/ticket/")
    assert first.status_code == 302 and "/login?next=/admin/ticket/" in first.headers["Location"]
    landed = login_form(client, "alice", PASSWORD, "/admin/ticket/")
    assert landed.status_code == 302 and landed.headers["Location"] == "/admin/ticket/"
    page = client.get("/admin/ticket/").get_data(as_text=True)
    assert "Alice&#39;s printer" in page or "Alice's printer" in page
    assert "Carol&#39;s laptop" not in page and "Carol's laptop" not in page, "the list keeps to the user's rows"
    assert "alice" in page and "Log out" in page


def test_screens_hide_hidden_fields_and_lock_read_only_ones(helpdesk: Any) -> None:
    runtime = helpdesk.app_.extensions["formwork"]
    ticket = helpdesk.tickets["alice"]
    bob = logged_in(helpdesk.app_.test_client(), runtime, "bob")  # dept: Sales rows, secret_note hidden, title read-only
    listing = bob.get("/admin/ticket/").get_data(as_text=True)
    assert "Alice&#39;s printer" in listing and "Carol&#39;s laptop" not in listing
    assert "Secret note" not in listing and "pin 4711" not in listing
    assert bob.get("/admin/ticket/?sort=3&desc=1").status_code == 200
    details = bob.get(f"/admin/ticket/details/?id={ticket['id']}").get_data(as_text=True)
    assert "Alice&#39;s printer" in details and "Secret note" not in details and "pin 4711" not in details
    assert bob.get(f"/admin/ticket/details/?id={helpdesk.tickets['other']['id']}").status_code == 302, "outside bob's rows"
    assert bob.get("/admin/ticket/new/").status_code in (302, 403), "bob may not create tickets"
    form = bob.get(f"/admin/ticket/edit/?id={ticket['id']}").get_data(as_text=True)
    title_input = re.search(r'<input[^>]*id="title"[^>]*>', form)
    assert title_input and "disabled" in title_input.group(0)
    assert 'id="secret_note"' not in form and "pin 4711" not in form
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    assert csrf
    before = helpdesk.records.get("ticket", ticket["id"], Actor.system())
    saved = bob.post(f"/admin/ticket/edit/?id={ticket['id']}", data={"csrf_token": csrf.group(1), "fw_version": str(before["version"]),
                                                                      "title": "renamed", "secret_note": "overwritten", "owner": ""})
    assert saved.status_code in (200, 302)
    after = helpdesk.records.get("ticket", ticket["id"], Actor.system())
    assert (after["title"], after["secret_note"]) == ("Alice's printer", "pin 4711")
    dave = logged_in(helpdesk.app_.test_client(), runtime, "dave")  # reader: no memo rows of others, no user entity
    assert dave.get("/admin/user/").status_code == 403
    home = dave.get("/").get_data(as_text=True)
    assert "/admin/ticket/" in home and "/admin/user/" not in home, "the home page lists what dave may read"
    assert "/admin/user/" not in dave.get("/admin/").get_data(as_text=True)
