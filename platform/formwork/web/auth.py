"""Who is asking: login and logout, sessions, CSRF protection and the current actor.

``init_auth(app)`` installs, on a Flask app whose ``extensions["formwork"]`` is the
``Runtime``:

- ``GET/POST /login`` and ``POST /logout`` (endpoints ``formwork_auth.login`` / ``.logout``);
- the session cookie: HttpOnly, SameSite=Lax, Secure when the request came over HTTPS.
  The cookie holds a random session id; the session itself is a row of ``fw_session``, so
  logout ends it everywhere and several web processes share it;
- CSRF protection: every POST, PUT, PATCH and DELETE that a browser's cookies could
  authenticate must carry the session's CSRF token (form field ``csrf_token`` or header
  ``X-CSRF-Token``). The token is the one the screens' forms already carry (flask-admin's
  ``SecureForm``). A request with an ``Authorization`` header is authenticated by its
  bearer token alone (cookies are ignored), so it needs no CSRF token; an API request with
  neither header nor login is left to the API, which answers 401;
- with ``require_login`` (default), every page outside the API, ``/login``, ``/healthz``
  and ``/static`` sends a visitor who is not logged in to the login page.

``current_actor()`` is the ``Actor`` of the request (bearer token first, else the session),
or None; a deactivated user is None at once, whatever their session or token.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import flask
from flask.sessions import SecureCookieSessionInterface
from flask_admin.form import SecureForm
from werkzeug.datastructures import MultiDict

from formwork.records import Actor
from formwork.security import audit, sessions, tokens
from formwork.security.accounts import Credential, actor_for_session, actor_for_token
from formwork.security.login import attempt_login
from formwork.security.tables import SecurityTables, security_tables
from formwork.web.runtime import Runtime

SESSION_KEY = "fw_sid"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_PREFIXES = ("/login", "/healthz", "/static/")
CSRF_REFUSED = "This form has expired or did not come from this site. Reload the page and try again."
View = TypeVar("View", bound=Callable[..., Any])


class _CsrfForm(SecureForm):
    """A form of nothing but the CSRF token: the same token the screens' forms carry."""


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure whenever the request is HTTPS."""

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        configured = bool(app.config.get("SESSION_COOKIE_SECURE"))
        return configured or (flask.has_request_context() and flask.request.is_secure)


class _Auth:
    """What the views and hooks of ``init_auth`` share."""

    def __init__(self, runtime: Runtime, api_prefix: str, require_login: bool):
        self.runtime = runtime
        self.tables: SecurityTables = security_tables(runtime.schema.metadata)
        self.api_prefix = api_prefix.rstrip("/")
        self.require_login = require_login

    def now(self) -> datetime:
        return self.runtime.records.clock()

    def is_api(self, path: str) -> bool:
        return path == self.api_prefix or path.startswith(self.api_prefix + "/")


def init_auth(app: flask.Flask, *, api_prefix: str = "/api", require_login: bool = True) -> None:
    """Install login, logout, session cookie settings, CSRF checks and (with
    ``require_login``) the login requirement of every page outside the API."""
    runtime: Runtime = app.extensions["formwork"]
    auth = _Auth(runtime, api_prefix, require_login)
    app.extensions["formwork_auth"] = auth
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = _SessionInterface()
    blueprint = flask.Blueprint("formwork_auth", __name__)
    blueprint.add_url_rule("/login", "login", _login_view, methods=["GET", "POST"])
    blueprint.add_url_rule("/logout", "logout", _logout_view, methods=["POST"])
    app.register_blueprint(blueprint)
    app.before_request(_guard)

    @app.context_processor
    def auth_context() -> dict[str, Any]:
        actor = current_actor()
        return {"formwork_user": actor.username if actor else None, "formwork_csrf_token": csrf_token}


def current_actor() -> Actor | None:
    """The actor of this request: from ``Authorization: Bearer <token>`` when the header is
    there (a malformed, unknown, expired or revoked token gives None), else from the login
    session; None for a deactivated user. Computed once per request."""
    if "formwork_actor" in flask.g:
        return flask.g.formwork_actor
    auth: _Auth = flask.current_app.extensions["formwork_auth"]
    runtime = auth.runtime
    header = flask.request.headers.get("Authorization")
    if header is None and not flask.session.get(SESSION_KEY):
        flask.g.formwork_actor = None
        return None
    now = auth.now()
    with runtime.engine.connect() as conn:
        if header is not None:
            scheme, _, token = header.partition(" ")
            found = actor_for_token(conn, runtime.app_model, runtime.schema, token.strip(), now) if scheme.lower() == "bearer" else Credential(None)
            if found.token_id is not None and tokens.note_use(conn, auth.tables.tokens, found.token_id, found.last_used_at, now):
                conn.commit()
        else:
            found = actor_for_session(conn, runtime.app_model, runtime.schema, flask.session.get(SESSION_KEY), now)
    actor = found.actor
    flask.g.formwork_actor = actor
    return actor


def login_required(view: View) -> View:
    """Decorate a view: without an actor, API paths answer 401 (JSON, ``WWW-Authenticate:
    Bearer``) and pages redirect to the login page."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if current_actor() is None:
            return _unauthenticated()
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def csrf_token() -> str:
    """The CSRF token of this session, for a hidden ``csrf_token`` field or an
    ``X-CSRF-Token`` header."""
    return _CsrfForm().csrf_token.current_token


def _csrf_valid(value: str | None) -> bool:
    if not value or "csrf" not in flask.session:
        return False
    return _CsrfForm(formdata=MultiDict({CSRF_FIELD: value})).validate()


def _guard() -> Any:
    """Before every request: CSRF on unsafe methods, then the login requirement."""
    auth: _Auth = flask.current_app.extensions["formwork_auth"]
    request = flask.request
    api = auth.is_api(request.path)
    if request.method in UNSAFE_METHODS and "Authorization" not in request.headers:
        # a cookie can only authenticate an API call after login; without one the API says 401
        cookie_login = not api or SESSION_KEY in flask.session
        token = request.headers.get(CSRF_HEADER) or (request.form.get(CSRF_FIELD) if not api else None)
        if cookie_login and not _csrf_valid(token):
            if api:
                return flask.jsonify(error="csrf", message=CSRF_REFUSED), 403
            return flask.render_template("formwork/login.html", error=CSRF_REFUSED, next=_safe_next(request.form.get("next")),
                                         username=request.form.get("username", "")[:150]), 403
    if auth.require_login and not api and not request.path.startswith(PUBLIC_PREFIXES) and current_actor() is None:
        return _unauthenticated()
    return None


def _unauthenticated() -> Any:
    auth: _Auth = flask.current_app.extensions["formwork_auth"]
    if auth.is_api(flask.request.path):
        response = flask.jsonify(error="unauthenticated", message="log in or send Authorization: Bearer <token>")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="formwork"'
        return response
    return flask.redirect(flask.url_for("formwork_auth.login", next=flask.request.full_path.rstrip("?")))


def _safe_next(target: str | None) -> str:
    """A local path to go to after login; anything pointing elsewhere becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _login_view() -> Any:
    auth: _Auth = flask.current_app.extensions["formwork_auth"]
    request = flask.request
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return flask.render_template("formwork/login.html", error=None, next=target, username="")
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    runtime = auth.runtime
    users = runtime.schema.tables["user"]
    with runtime.engine.begin() as conn:
        outcome = attempt_login(conn, users, auth.tables, username, password, auth.now(), request.remote_addr)
        if outcome.ok:
            old = flask.session.get(SESSION_KEY)
            if old:
                sessions.end_session(conn, auth.tables.sessions, old)
            session_id = sessions.start_session(conn, auth.tables.sessions, outcome.user_id, auth.now(), request.remote_addr)
    if not outcome.ok:
        return flask.render_template("formwork/login.html", error=outcome.message, next=target, username=username[:150]), 200
    # a new session: nothing from before the login (CSRF secret included) carries over
    flask.session.clear()
    flask.session[SESSION_KEY] = session_id
    flask.g.pop("formwork_actor", None)
    return flask.redirect(target)


def _logout_view() -> Any:
    auth: _Auth = flask.current_app.extensions["formwork_auth"]
    session_id = flask.session.get(SESSION_KEY)
    if session_id:
        with auth.runtime.engine.begin() as conn:
            user_id = sessions.end_session(conn, auth.tables.sessions, session_id)
            if user_id is not None:
                users = auth.runtime.schema.tables["user"]
                username = conn.execute(users.select().with_only_columns(users.c.username).where(users.c.id == user_id)).scalar()
                audit.record_event(conn, auth.tables.events, "logout", auth.now(), username=username, actor=username,
                                   remote_addr=flask.request.remote_addr)
    flask.session.clear()
    flask.g.pop("formwork_actor", None)
    return flask.redirect(flask.url_for("formwork_auth.login"))
