"""Real credentials for tests of a served deployment: users made with ``Accounts``, API
calls with a bearer token, screens with a login session (through the login form or a
session row and its cookie)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import flask

from formwork.security import sessions
from formwork.security.accounts import Accounts
from formwork.web.auth import SESSION_KEY
from formwork.web.runtime import Runtime

PASSWORD = "correct horse battery"


def make_user(runtime: Runtime, username: str, *, roles: Iterable[str] = (), admin: bool = False, department: str | None = None,
              password: str | None = None) -> int:
    """A new active user (no password unless given: the tests log in by session or token); its id."""
    record = Accounts(runtime.records).create_user(username, password, roles=roles, admin=admin, department=department)
    return int(record["id"])


def token_for(runtime: Runtime, username: str) -> str:
    """A new personal token of ``username``."""
    return Accounts(runtime.records).create_token(username).token


def with_token(client: Any, token: str) -> Any:
    """``client`` sending ``Authorization: Bearer <token>`` on every request."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def api_client(app: flask.Flask, username: str = "api_admin", **user: Any) -> Any:
    """A test client of ``app`` calling as a new user (an admin unless roles are given)."""
    runtime: Runtime = app.extensions["formwork"]
    make_user(runtime, username, admin=not user.get("roles"), **user)
    return with_token(app.test_client(), token_for(runtime, username))


def logged_in(client: Any, runtime: Runtime, username: str) -> Any:
    """``client`` holding a login session of ``username`` (a session row and its cookie)."""
    auth = client.application.extensions["formwork_auth"]
    user_id = Accounts(runtime.records).require_user(username)
    with runtime.engine.begin() as conn:
        session_id = sessions.start_session(conn, auth.tables.sessions, user_id, runtime.records.clock())
    with client.session_transaction() as session:
        session[SESSION_KEY] = session_id
    return client


def screen_client(app: flask.Flask, username: str = "screen_admin", **user: Any) -> Any:
    """A test client of ``app`` logged in as a new user (an admin unless roles are given)."""
    runtime: Runtime = app.extensions["formwork"]
    make_user(runtime, username, admin=not user.get("roles"), **user)
    return logged_in(app.test_client(), runtime, username)


def login_form(client: Any, username: str, password: str, next_page: str = "/") -> Any:
    """Log in through the real /login form (with its CSRF token); the response."""
    page = client.get(f"/login?next={next_page}").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert token, "the login form carries no CSRF token"
    return client.post("/login", data={"csrf_token": token.group(1), "username": username, "password": password, "next": next_page})
