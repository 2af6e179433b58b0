"""Accounts over the REST API (``/api/v1/me...`` and, for admins, ``/api/v1/user/<id>/...``):
a person's own password and tokens, an admin's role assignments, password resets and token
revocations, each refused with a clear error and nothing written when it should be; on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from security_world import PASSWORD, build_world
from web_login import token_for, with_token

from formwork.security.audit import read_events
from formwork.web import create_app


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Any]:
    world = build_world(tmp_path / "helpdesk", db_url, passwords=True)
    world.web = create_app(world.project, app_model=world.app, engine=world.engine, config={"TESTING": True})
    runtime = world.web.extensions["formwork"]
    world.client = lambda username: with_token(world.web.test_client(), token_for(runtime, username))
    yield world
    world.engine.dispose()


def roles_in_db(site: Any, username: str) -> list[str]:
    users, roles = site.schema.tables["user"], site.accounts.security.user_roles
    query = sa.select(roles.c.role).join(users, users.c.id == roles.c.user_id).where(users.c.username == username)
    with site.engine.connect() as conn:
        return sorted(conn.execute(query).scalars())


def password_hash(site: Any, username: str) -> str:
    users = site.schema.tables["user"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(users.c.password_hash).where(users.c.username == username)).scalar_one()


def events(site: Any, kind: str) -> list[Any]:
    with site.engine.connect() as conn:
        return read_events(conn, site.accounts.security.events, event=kind)


def test_me_tells_the_caller_who_they_are_and_needs_credentials(site: Any) -> None:
    response = site.client("alice").get("/api/v1/me")
    assert response.status_code == 200
    assert response.json == {"id": site.users["alice"], "username": "alice", "department": site.departments["SALES"],
                             "roles": ["author"], "is_admin": False}
    anonymous = site.web.test_client().get("/api/v1/me")
    assert anonymous.status_code == 401 and anonymous.json["errors"][0]["code"] == "unauthenticated"


def test_a_person_changes_their_own_password_with_the_current_one(site: Any) -> None:
    alice = site.client("alice")
    before = password_hash(site, "alice")
    wrong = alice.post("/api/v1/me/password", json={"current_password": "guess", "password": "a much better one"})
    assert wrong.status_code == 422
    assert wrong.json["errors"] == [{"field": "current_password", "code": "wrong_password", "message": "is not your current password"}]
    weak = alice.post("/api/v1/me/password", json={"current_password": PASSWORD, "password": "short"})
    assert weak.status_code == 422 and weak.json["errors"][0]["field"] == "password"
    assert weak.json["errors"][0]["code"] == "password_policy"
    typo = alice.post("/api/v1/me/password", json={"current_password": PASSWORD, "pasword": "a much better one"})
    assert typo.status_code == 422 and typo.json["errors"][0] == {
        "field": "pasword", "code": "unknown_field", "message": "is not accepted here; send only: current_password, password"}
    assert password_hash(site, "alice") == before  # nothing was written by any refusal
    assert alice.post("/api/v1/me/password", json={"current_password": PASSWORD, "password": "a much better one"}).status_code == 204
    assert password_hash(site, "alice") != before
    assert [e.username for e in events(site, "password_changed")] == ["alice"]
    assert [e.username for e in events(site, "password_change_failed")] == ["alice"]


def test_guessing_the_current_password_locks_the_account_like_failed_logins(site: Any) -> None:
    alice = site.client("alice")
    for _ in range(5):
        assert alice.post("/api/v1/me/password", json={"current_password": "guess", "password": "a much better one"}).status_code == 422
    before = password_hash(site, "alice")
    locked = alice.post("/api/v1/me/password", json={"current_password": PASSWORD, "password": "a much better one"})
    assert locked.status_code == 422 and locked.json["errors"][0]["code"] == "locked"
    assert "too many failed logins" in locked.json["errors"][0]["message"]
    assert password_hash(site, "alice") == before


def test_a_person_creates_lists_and_revokes_their_own_tokens(site: Any) -> None:
    alice = site.client("alice")
    created = alice.post("/api/v1/me/tokens", json={"name": "laptop", "expires_in": "30d"})
    assert created.status_code == 201 and created.json["token"].startswith("fw_") and created.json["name"] == "laptop"
    fresh = with_token(site.web.test_client(), created.json["token"])
    assert fresh.get("/api/v1/me").json["username"] == "alice"
    listed = alice.get("/api/v1/me/tokens").json["items"]
    assert {t["name"] for t in listed} >= {"laptop"} and all("token" not in t for t in listed)
    assert created.json["token"] not in str(listed)
    assert alice.delete(f"/api/v1/me/tokens/{created.json['id']}").status_code == 204
    assert fresh.get("/api/v1/me").status_code == 401
    again = alice.delete(f"/api/v1/me/tokens/{created.json['id']}")
    assert again.status_code == 409 and again.json["errors"][0]["code"] == "already_revoked"


def test_bad_token_requests_are_refused_and_create_nothing(site: Any) -> None:
    alice = site.client("alice")
    count = len(site.accounts.list_tokens("alice"))
    for body, field in [({"expires_in": "forever"}, "expires_in"), ({"expires_in": 30}, "expires_in"), ({"name": "x" * 101}, "name"),
                        ({"scope": "all"}, "scope")]:
        response = alice.post("/api/v1/me/tokens", json=body)
        assert response.status_code == 422 and response.json["errors"][0]["field"] == field, body
    assert alice.post("/api/v1/me/tokens", data="not json", content_type="application/json").status_code == 400
    assert len(site.accounts.list_tokens("alice")) == count


def test_nobody_revokes_or_lists_another_persons_token_without_being_admin(site: Any) -> None:
    bob_token = site.accounts.create_token("bob")
    alice = site.client("alice")
    assert alice.delete(f"/api/v1/me/tokens/{bob_token.id}").status_code == 404
    assert alice.delete(f"/api/v1/user/{site.users['bob']}/tokens/{bob_token.id}").status_code == 403
    assert alice.get(f"/api/v1/user/{site.users['bob']}/tokens").status_code == 403
    assert with_token(site.web.test_client(), bob_token.token).get("/api/v1/me").status_code == 200
    root = site.client("root")
    assert [t["id"] for t in root.get(f"/api/v1/user/{site.users['bob']}/tokens").json["items"]] == [bob_token.id]
    assert root.delete(f"/api/v1/user/{site.users['bob']}/tokens/{bob_token.id}").status_code == 204
    assert with_token(site.web.test_client(), bob_token.token).get("/api/v1/me").status_code == 401


def test_an_admin_sets_a_users_roles_and_the_change_is_audited(site: Any) -> None:
    root = site.client("root")
    bob = site.users["bob"]
    assert root.get(f"/api/v1/user/{bob}/roles").json == {"roles": ["dept"]}
    response = root.put(f"/api/v1/user/{bob}/roles", json={"roles": ["reader", "head"]})
    assert response.status_code == 200 and response.json == {"roles": ["head", "reader"]}
    assert roles_in_db(site, "bob") == ["head", "reader"]
    by_root = [e for e in events(site, "role_granted") if e.actor == "root"]
    assert sorted((e.username, e.detail["role"]) for e in by_root) == [("bob", "head"), ("bob", "reader")]
    assert [e.detail["role"] for e in events(site, "role_revoked")] == ["dept"]
    assert {e.actor for e in events(site, "role_revoked")} == {"root"}


def test_role_changes_that_must_not_happen_change_nothing(site: Any) -> None:
    root, alice = site.client("root"), site.client("alice")
    bob = site.users["bob"]
    # privilege escalation: a non-admin gives themselves the admin role
    escalate = alice.put(f"/api/v1/user/{site.users['alice']}/roles", json={"roles": ["admin"]})
    assert escalate.status_code == 403
    unknown = root.put(f"/api/v1/user/{bob}/roles", json={"roles": ["reader", "heda"]})
    assert unknown.status_code == 422 and unknown.json["errors"][0]["field"] == "roles"
    assert unknown.json["errors"][0]["code"] == "unknown_role" and "did you mean 'head'" in unknown.json["errors"][0]["message"]
    assert root.put(f"/api/v1/user/{bob}/roles", json={"roles": "reader"}).status_code == 422
    assert root.put("/api/v1/user/999999/roles", json={"roles": []}).status_code == 404
    assert root.put("/api/v1/user/abc/roles", json={"roles": []}).status_code == 404
    lockout = root.put(f"/api/v1/user/{site.users['root']}/roles", json={"roles": ["reader"]})
    assert lockout.status_code == 422 and lockout.json["errors"][0]["code"] == "self_lockout"
    assert roles_in_db(site, "bob") == ["dept"] and roles_in_db(site, "alice") == ["author"] and roles_in_db(site, "root") == ["admin"]


def test_an_admin_resets_a_password_and_others_cannot(site: Any) -> None:
    before = password_hash(site, "bob")
    assert site.client("alice").post(f"/api/v1/user/{site.users['bob']}/password", json={"password": "alice was here"}).status_code == 403
    weak = site.client("root").post(f"/api/v1/user/{site.users['bob']}/password", json={"password": "bob"})
    assert weak.status_code == 422 and weak.json["errors"][0]["field"] == "password"
    assert password_hash(site, "bob") == before
    assert site.client("root").post(f"/api/v1/user/{site.users['bob']}/password", json={"password": "a fresh start"}).status_code == 204
    assert password_hash(site, "bob") != before


def test_an_entity_api_session_needs_csrf_for_account_changes(site: Any) -> None:
    client = site.web.test_client()
    page = client.get("/login").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}).status_code == 302
    before = password_hash(site, "alice")
    refused = client.post("/api/v1/me/password", json={"current_password": PASSWORD, "password": "a much better one"})
    assert refused.status_code == 403
    assert password_hash(site, "alice") == before
