"""Accounts over HTTP: a caller's own profile, password and tokens, and (for admins) the
roles, password and tokens of any user. A blueprint under ``/api/v1`` beside the records API.

- ``GET /api/v1/me`` -> the caller: ``id``, ``username``, ``department``, ``roles``, ``is_admin``
- ``POST /api/v1/me/password`` ``{"current_password", "password"}`` -> 204
- ``GET /api/v1/me/tokens`` -> ``{"items": [...]}`` (never the secrets)
- ``POST /api/v1/me/tokens`` ``{"name", "expires_in": "30d"}`` -> 201 ``{"id", "token", "expires_at"}``
  (the token is shown this once)
- ``DELETE /api/v1/me/tokens/<id>`` -> 204
- admins: ``GET/PUT /api/v1/user/<id>/roles`` (``{"roles": [...]}``, PUT sets exactly these),
  ``POST /api/v1/user/<id>/password`` ``{"password"}``, ``GET /api/v1/user/<id>/tokens``,
  ``DELETE /api/v1/user/<id>/tokens/<token id>``

Users and departments themselves are records: ``/api/v1/user`` and ``/api/v1/department``.
Every change here is a security event naming the caller. Errors have the records API's shape.
"""

from __future__ import annotations

from typing import Any

import flask
import sqlalchemy as sa

from formwork.records import Actor
from formwork.security import tokens
from formwork.security.accounts import AccountError, Accounts
from formwork.web.api import request_actor
from formwork.web.api.errors import json_object, refuse, register_error_handlers
from formwork.web.api.payload import json_response
from formwork.web.runtime import Runtime

BLUEPRINT_NAME = "formwork_accounts"
API_CHANNEL = "api"
MAX_TOKEN_NAME = 100


def accounts_blueprint() -> flask.Blueprint:
    """The accounts API; register it on a Formwork Flask app (``extensions["formwork"]`` is
    the ``Runtime``, ``init_auth`` installed)."""
    blueprint = flask.Blueprint(BLUEPRINT_NAME, __name__, url_prefix="/api/v1")
    register_error_handlers(blueprint)

    @blueprint.errorhandler(AccountError)
    def refused(error: AccountError) -> flask.Response:
        status = 404 if error.code == "unknown_user" and flask.request.view_args and "user_id" in flask.request.view_args else 422
        return json_response({"errors": [{"field": error.field, "code": error.code, "message": str(error)}]}, status)

    @blueprint.get("/me")
    def me() -> flask.Response:
        caller = _person()
        return json_response({"id": caller.user_id, "username": caller.username, "department": caller.department_id,
                              "roles": sorted(caller.roles), "is_admin": caller.is_admin})

    @blueprint.post("/me/password")
    def change_password() -> flask.Response:
        caller = _person()
        body = json_object(("current_password", "password"))
        current, new = _text(body, "current_password"), _text(body, "password")
        _accounts(caller).change_own_password(caller.username, current, new, flask.request.remote_addr)
        return flask.Response(status=204)

    @blueprint.get("/me/tokens")
    def my_tokens() -> flask.Response:
        caller = _person()
        return json_response({"items": _token_items(_accounts(caller), caller.username)})

    @blueprint.post("/me/tokens")
    def create_token() -> flask.Response:
        caller = _person()
        body = json_object(("name", "expires_in"))
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_TOKEN_NAME):
            raise refuse(422, "name", "type", f"must be text of at most {MAX_TOKEN_NAME} characters")
        expires = body.get("expires_in")
        try:
            lifetime = tokens.parse_duration(expires) if isinstance(expires, str) else None
        except ValueError as bad:
            raise refuse(422, "expires_in", "duration", str(bad)) from None
        if expires is not None and not isinstance(expires, str):
            raise refuse(422, "expires_in", "duration", "must be a duration like 30d, 12h, 45m or 2w")
        issued = _accounts(caller).create_token(caller.username, lifetime, name)
        return json_response({"id": issued.id, "token": issued.token, "name": name,
                              "expires_at": issued.expires_at.isoformat() if issued.expires_at else None}, 201)

    @blueprint.delete("/me/tokens/<token_id>")
    def revoke_my_token(token_id: str) -> flask.Response:
        caller = _person()
        _revoke(_accounts(caller), caller.username, token_id)
        return flask.Response(status=204)

    @blueprint.get("/user/<user_id>/roles")
    def roles(user_id: str) -> flask.Response:
        accounts = _accounts(_admin())
        return json_response({"roles": accounts.roles_of(_username(user_id))})

    @blueprint.put("/user/<user_id>/roles")
    def set_roles(user_id: str) -> flask.Response:
        accounts = _accounts(_admin())
        username = _username(user_id)
        wanted = json_object(("roles",)).get("roles")
        if not isinstance(wanted, list) or not all(isinstance(r, str) for r in wanted):
            raise refuse(422, "roles", "type", "must be a list of role names")
        return json_response({"roles": accounts.set_roles(username, wanted)})

    @blueprint.post("/user/<user_id>/password")
    def reset_password(user_id: str) -> flask.Response:
        accounts = _accounts(_admin())
        username = _username(user_id)
        accounts.set_password(username, _text(json_object(("password",)), "password"))
        return flask.Response(status=204)

    @blueprint.get("/user/<user_id>/tokens")
    def user_tokens(user_id: str) -> flask.Response:
        accounts = _accounts(_admin())
        return json_response({"items": _token_items(accounts, _username(user_id))})

    @blueprint.delete("/user/<user_id>/tokens/<token_id>")
    def revoke_user_token(user_id: str, token_id: str) -> flask.Response:
        accounts = _accounts(_admin())
        _revoke(accounts, _username(user_id), token_id)
        return flask.Response(status=204)

    return blueprint


def _runtime() -> Runtime:
    return flask.current_app.extensions["formwork"]


def _person() -> Actor:
    """The caller, who must be a person (a user with a username)."""
    caller = request_actor()
    if caller.user_id is None or not caller.username:
        raise refuse(401, "", "login_required", "log in as a user")
    return caller


def _admin() -> Actor:
    caller = _person()
    if not caller.is_admin:
        raise refuse(403, "", "forbidden", "only admins manage other users' roles, passwords and tokens")
    return caller


def _accounts(caller: Actor) -> Accounts:
    runtime = _runtime()
    return Accounts(runtime.records, actor_name=caller.username or "api", channel=API_CHANNEL, clock=runtime.records.clock)


def _username(user_id: str) -> str:
    """The username of the user with id ``user_id`` (404 when there is none)."""
    runtime = _runtime()
    users = runtime.schema.tables["user"]
    found = None
    if user_id.isdigit() and len(user_id) < 19:
        with runtime.engine.connect() as conn:
            found = conn.execute(sa.select(users.c.username).where(users.c.id == int(user_id))).scalar()
    if found is None:
        raise refuse(404, "", "not_found", f"there is no user with id '{user_id}'")
    return str(found)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise refuse(422, key, "required", "is required (text)")
    return value


def _token_items(accounts: Accounts, username: str) -> list[dict[str, Any]]:
    now = accounts.clock()
    return [
        {"id": t.id, "name": t.name, "prefix": t.prefix, "state": t.state(now), "created_at": t.created_at.isoformat(),
         "expires_at": _iso(t.expires_at), "last_used_at": _iso(t.last_used_at), "revoked_at": _iso(t.revoked_at)}
        for t in accounts.list_tokens(username)
    ]


def _revoke(accounts: Accounts, username: str, token_id: str) -> None:
    """Revoke a token of ``username``; 404 when the token is not theirs (whose it is stays unsaid)."""
    token = None
    if token_id.isdigit():
        token = next((t for t in accounts.list_tokens(username) if t.id == int(token_id)), None)
    if token is None:
        raise refuse(404, "", "not_found", f"you have no token with id '{token_id}'")
    if token.revoked_at is not None:
        raise refuse(409, "", "already_revoked", f"token {token_id} is already revoked")
    accounts.revoke_token(token.id)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
