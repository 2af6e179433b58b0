"""Login, logout, sessions, CSRF and bearer tokens through a Flask test client, on a small
Flask app that installs ``init_auth`` (SQLite file and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import flask
import pytest
import sqlalchemy as sa
from security_world import PASSWORD, build_world

from formwork.records import PermissionDenied, RecordInvalid
from formwork.security.audit import read_events
from formwork.web.assets import ui_root
from formwork.web.auth import current_actor, init_auth, login_required
from formwork.web.runtime import Runtime

PEOPLE = {"alice": (("author",), "SALES"), "bob": (("dept",), "SALES")}


@pytest.fixture
def world(tmp_path: Path, db_url: str):
    built = build_world(tmp_path / "helpdesk", db_url, PEOPLE, passwords=True)
    yield built
    built.engine.dispose()


@pytest.fixture
def app(world) -> flask.Flask:
    ui = ui_root()
    app = flask.Flask("security_test", template_folder=str(ui / "templates"), static_folder=str(ui / "static"))
    app.config.update(SECRET_KEY="test-secret", TESTING=True)
    app.extensions["formwork"] = Runtime(project=world.project, app_model=world.app, schema=world.schema, engine=world.engine,
                                         records=world.records, hooks=world.hooks)
    init_auth(app)
    app.config["notes"] = []

    @app.get("/")
    def home() -> str:
        return f"home of {current_actor().username}"

    @app.get("/form")
    def form() -> str:
        return flask.render_template_string("<form method=post action=/notes><input name=csrf_token value='{{ formwork_csrf_token() }}'></form>"
                                            "{% include 'formwork/logout_form.html' %}")

    @app.post("/notes")
    def notes() -> str:
        app.config["notes"].append(flask.request.form.get("text"))
        return "saved"

    @app.get("/api/v1/whoami")
    @login_required
    def whoami() -> flask.Response:
        return flask.jsonify(user=current_actor().username)

    @app.post("/api/v1/tickets")
    @login_required
    def create_ticket() -> tuple[flask.Response, int]:
        actor = current_actor()
        try:
            record = world.records.create("ticket", {"title": flask.request.json["title"], "owner": actor.user_id}, actor, "api")
        except RecordInvalid as invalid:
            return flask.jsonify(errors=[e.as_dict() for e in invalid.errors]), 400
        except PermissionDenied as denied:
            return flask.jsonify(error=str(denied)), 403
        return flask.jsonify(id=record["id"]), 201

    return app


def token_in(html: str) -> str:
    return re.search(r'name="?csrf_token"? value=["\']([^"\']+)["\']', html).group(1)


def login(client, username: str = "alice", password: str = PASSWORD, next_path: str = "/"):
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "next": next_path, "csrf_token": token_in(page.text)})


def events(world, kind: str) -> list:
    with world.engine.connect() as conn:
        return read_events(conn, world.accounts.security.events, event=kind)


def test_pages_need_a_login_and_the_login_page_leads_back(app, world):
    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/")
    assert 'name="csrf_token"' in client.get("/login").text
    response = login(client, next_path="/form")
    assert response.status_code == 302 and response.headers["Location"] == "/form"
    assert client.get("/").text == "home of alice"
    assert [e.username for e in events(world, "login")] == ["alice"]


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(app):
    client = app.test_client()
    cookie = login(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = app.test_client()
    page = secure.get("/login", base_url="https://helpdesk.example")
    response = secure.post("/login", base_url="https://helpdesk.example",
                           data={"username": "alice", "password": PASSWORD, "csrf_token": token_in(page.text)})
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_password_or_unknown_user_gets_the_same_message(app, world):
    client = app.test_client()
    for username, password in (("alice", "wrong password"), ("nobody", PASSWORD), ("a" * 10_000, "x" * 100_000), ("", "")):
        response = login(client, username, password)
        assert response.status_code == 200 and "wrong username or password" in response.text
    assert client.get("/").status_code == 302
    reasons = sorted(e.detail.get("reason") for e in events(world, "login_failed"))
    assert reasons == ["unknown_user", "wrong_password"]


def test_repeated_failures_lock_the_username_for_a_while(app, world):
    client = app.test_client()
    answers = [login(client, "alice", "not it at all").text for _ in range(5)]
    assert ["wrong username or password" in a for a in answers] == [True] * 4 + [False]
    assert "too many failed logins" in answers[-1]
    response = login(client, "alice", PASSWORD)
    assert "too many failed logins: try again in 15 minutes" in response.text
    assert client.get("/").status_code == 302
    assert len(events(world, "lockout")) == 1
    assert login(app.test_client(), "bob", PASSWORD).status_code == 302  # others are not locked
    world.clock.now += timedelta(minutes=16)
    assert login(client, "alice", PASSWORD).status_code == 302
    assert client.get("/").text == "home of alice"


def test_a_form_post_without_the_csrf_token_is_refused(app):
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 403 and "Reload the page" in response.text
    login(client)
    assert client.post("/notes", data={"text": "forged"}).status_code == 403
    assert client.post("/notes", data={"text": "forged", "csrf_token": token_in(page.text)}).status_code == 403  # pre-login token
    assert client.post("/notes", data={"text": "forged", "csrf_token": "20990101000000##" + "0" * 40}).status_code == 403
    assert app.config["notes"] == []
    token = token_in(client.get("/form").text)
    assert client.post("/notes", data={"text": "real", "csrf_token": token}).text == "saved"
    assert app.config["notes"] == ["real"]


def test_logout_ends_the_session_even_for_a_copied_cookie(app, world):
    client = app.test_client()
    login(client)
    stolen = client.get_cookie("session").value
    page = client.get("/form").text
    assert "Log out" in page and "alice" in page
    assert client.post("/logout", data={"csrf_token": token_in(page)}).status_code == 302
    assert client.get("/").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/").status_code == 302
    assert thief.get("/api/v1/whoami").status_code == 401
    assert [e.username for e in events(world, "logout")] == ["alice"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bearer_tokens_work_until_they_expire_or_are_revoked(app, world):
    client = app.test_client()
    issued = world.accounts.create_token("alice", timedelta(days=30), "ci")
    assert client.get("/api/v1/whoami", headers=bearer(issued.token)).json == {"user": "alice"}
    with world.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM fw_token")).scalar_one()
    assert issued.token not in stored and len(stored) == 64
    world.clock.now += timedelta(days=31)
    assert client.get("/api/v1/whoami", headers=bearer(issued.token)).status_code == 401
    fresh = world.accounts.create_token("alice", None)
    assert client.get("/api/v1/whoami", headers=bearer(fresh.token)).status_code == 200
    world.accounts.revoke_token(fresh.id)
    response = client.get("/api/v1/whoami", headers=bearer(fresh.token))
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert [e.detail["token_id"] for e in events(world, "token_revoked")] == [fresh.id]


def test_a_tokens_last_use_is_kept_to_the_nearest_few_minutes(app, world):
    client = app.test_client()
    issued = world.accounts.create_token("alice", timedelta(days=30))
    (info,) = world.accounts.list_tokens("alice")
    assert info.last_used_at is None
    first_use = world.clock.now
    assert client.get("/api/v1/whoami", headers=bearer(issued.token)).status_code == 200
    assert world.accounts.list_tokens("alice")[0].last_used_at == first_use
    world.clock.now += timedelta(minutes=2)
    assert client.get("/api/v1/whoami", headers=bearer(issued.token)).status_code == 200
    assert world.accounts.list_tokens("alice")[0].last_used_at == first_use  # no write for a use this recent
    world.clock.now += timedelta(minutes=10)
    assert client.get("/api/v1/whoami", headers=bearer(issued.token)).status_code == 200
    assert world.accounts.list_tokens("alice")[0].last_used_at == world.clock.now


@pytest.mark.parametrize("header", ["Bearer", "Bearer abc", "Bearer fw_" + "A" * 43, "Basic YWxpY2U6cHc=", "bearer  ' OR 1=1 --",
                                    "Bearer fw_" + "A" * 5000])
def test_malformed_or_unknown_credentials_are_401(app, header):
    assert app.test_client().get("/api/v1/whoami", headers={"Authorization": header}).status_code == 401


def test_a_deactivated_users_session_and_token_stop_at_once(app, world):
    client = app.test_client()
    login(client)
    issued = world.accounts.create_token("alice", timedelta(days=1))
    api = app.test_client()
    assert api.get("/api/v1/whoami", headers=bearer(issued.token)).status_code == 200
    world.accounts.deactivate("alice")
    assert client.get("/").status_code == 302
    assert api.get("/api/v1/whoami", headers=bearer(issued.token)).status_code == 401
    assert "wrong username or password" in login(app.test_client()).text


def test_the_api_takes_a_session_only_with_the_csrf_header(app, world):
    client = app.test_client()
    assert client.post("/api/v1/tickets", json={"title": "x"}).status_code == 401  # nobody: 401, not a CSRF refusal
    login(client)
    assert client.post("/api/v1/tickets", json={"title": "x"}).status_code == 403
    token = token_in(client.get("/form").text)
    assert client.post("/api/v1/tickets", json={"title": "x"}, headers={"X-CSRF-Token": token}).status_code == 201
    issued = world.accounts.create_token("bob", timedelta(days=1))
    # a bearer request needs no CSRF token; bob's grants (dept) do not include create
    response = app.test_client().post("/api/v1/tickets", json={"title": "y"}, headers=bearer(issued.token))
    assert response.status_code == 403 and response.json == {"error": "you may not create ticket records"}


def test_after_login_only_local_paths_are_followed(app):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert login(app.test_client(), next_path=target).headers["Location"] == "/"


def test_a_new_password_ends_the_users_sessions(app, world):
    client = app.test_client()
    login(client)
    assert client.get("/").text == "home of alice"
    world.accounts.set_password("alice", "a brand new one")
    assert client.get("/").status_code == 302
    assert "wrong username or password" in login(app.test_client()).text
    assert login(app.test_client(), password="a brand new one").status_code == 302
