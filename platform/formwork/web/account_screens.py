"""Account screens: "My account" for everyone logged in (change the password, create and
revoke personal API tokens) and "Users and roles" for admins (assign the metadata's roles,
reset a password). They call the same ``Accounts`` operations as the CLI and the API, so the
same checks and security events apply; every form carries the session's CSRF token.
"""

from __future__ import annotations

from typing import Any

import flask
import sqlalchemy as sa
from flask_admin import BaseView, expose

from formwork.metadata.model import label_text
from formwork.records import Actor
from formwork.security import tokens
from formwork.security.accounts import AccountError, Accounts
from formwork.web.auth import current_actor
from formwork.web.runtime import Runtime
from formwork.web.screens import menu_layout

SCREEN_CHANNEL = "screen"
CATEGORY = "Organization"


def _accounts(runtime: Runtime, actor: Actor) -> Accounts:
    return Accounts(runtime.records, actor_name=actor.username or "screen", channel=SCREEN_CHANNEL, clock=runtime.records.clock)


class MyAccountView(BaseView):
    """The logged-in user's password and API tokens."""

    def __init__(self, runtime: Runtime, category: str = CATEGORY, **kwargs: Any):
        super().__init__(name="My account", endpoint="my_account", url="/admin/account", category=category, **kwargs)
        self.runtime = runtime

    def is_accessible(self) -> bool:
        actor = current_actor()
        return actor is not None and bool(actor.username)

    def _page(self, actor: Actor, status: int = 200, new_token: tokens.IssuedToken | None = None,
              errors: dict[str, str] | None = None) -> Any:
        accounts = _accounts(self.runtime, actor)
        now = accounts.clock()
        listed = [(t, t.state(now)) for t in accounts.list_tokens(actor.username or "")]
        html = self.render("formwork/my_account.html", actor=actor, tokens=listed, new_token=new_token, errors=errors or {})
        return html, status

    @expose("/")
    def index(self) -> Any:
        return self._page(current_actor())

    @expose("/password", methods=["POST"])
    def password(self) -> Any:
        actor = current_actor()
        form = flask.request.form
        new = form.get("password", "")
        if new != form.get("confirm", ""):
            return self._page(actor, 422, errors={"confirm": "the two new passwords differ"})
        try:
            _accounts(self.runtime, actor).change_own_password(actor.username, form.get("current_password", ""), new,
                                                               flask.request.remote_addr)
        except AccountError as refused:
            return self._page(actor, 422, errors={refused.field or "password": str(refused)})
        flask.flash("Your password was changed. Other sessions of yours have ended.", "success")
        return flask.redirect(flask.url_for(".index"))

    @expose("/tokens", methods=["POST"])
    def create_token(self) -> Any:
        actor = current_actor()
        form = flask.request.form
        name = form.get("name", "").strip()[:100] or None
        expires = form.get("expires_in", "").strip()
        try:
            lifetime = tokens.parse_duration(expires) if expires else None
        except ValueError as bad:
            return self._page(actor, 422, errors={"expires_in": str(bad)})
        issued = _accounts(self.runtime, actor).create_token(actor.username, lifetime, name)
        return self._page(actor, 201, new_token=issued)

    @expose("/tokens/<int:token_id>/revoke", methods=["POST"])
    def revoke_token(self, token_id: int) -> Any:
        actor = current_actor()
        accounts = _accounts(self.runtime, actor)
        mine = {t.id: t for t in accounts.list_tokens(actor.username)}
        if token_id not in mine or mine[token_id].revoked_at is not None:
            flask.abort(404)
        accounts.revoke_token(token_id)
        flask.flash(f"Token {mine[token_id].prefix}… was revoked.", "success")
        return flask.redirect(flask.url_for(".index"))


class UsersAndRolesView(BaseView):
    """Admins: every user with their roles; per user, the roles to hold and a new password."""

    def __init__(self, runtime: Runtime, category: str = CATEGORY, **kwargs: Any):
        super().__init__(name="Users and roles", endpoint="user_roles", url="/admin/user-roles", category=category, **kwargs)
        self.runtime = runtime

    def is_accessible(self) -> bool:
        actor = current_actor()
        return actor is not None and actor.is_admin

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        flask.abort(403)

    def _roles(self) -> list[tuple[str, str]]:
        """(name, label) of every role in the metadata."""
        app = self.runtime.app_model
        return [(name, label_text(role.label, app.default_locale, name)) for name, role in sorted(app.roles.items())]

    @expose("/")
    def index(self) -> Any:
        users = _accounts(self.runtime, current_actor()).list_users()
        return self.render("formwork/user_roles.html", users=users)

    def _user(self, user_id: int) -> str:
        table = self.runtime.schema.tables["user"]
        with self.runtime.engine.connect() as conn:
            username = conn.execute(sa.select(table.c.username).where(table.c.id == user_id)).scalar()
        if username is None:
            flask.abort(404)
        return str(username)

    def _edit_page(self, user_id: int, username: str, held: list[str], status: int = 200, errors: dict[str, str] | None = None) -> Any:
        html = self.render("formwork/user_roles_edit.html", user_id=user_id, username=username, roles=self._roles(),
                           held=set(held), errors=errors or {})
        return html, status

    @expose("/<int:user_id>", methods=["GET"])
    def edit(self, user_id: int) -> Any:
        username = self._user(user_id)
        return self._edit_page(user_id, username, _accounts(self.runtime, current_actor()).roles_of(username))

    @expose("/<int:user_id>/roles", methods=["POST"])
    def save_roles(self, user_id: int) -> Any:
        actor = current_actor()
        username = self._user(user_id)
        accounts = _accounts(self.runtime, actor)
        wanted = flask.request.form.getlist("roles")
        try:
            accounts.set_roles(username, wanted)
        except AccountError as refused:
            return self._edit_page(user_id, username, wanted, 422, {"roles": str(refused)})
        flask.flash(f"Roles of {username} saved.", "success")
        return flask.redirect(flask.url_for(".index"))

    @expose("/<int:user_id>/password", methods=["POST"])
    def reset_password(self, user_id: int) -> Any:
        actor = current_actor()
        username = self._user(user_id)
        accounts = _accounts(self.runtime, actor)
        try:
            accounts.set_password(username, flask.request.form.get("password", ""))
        except AccountError as refused:
            return self._edit_page(user_id, username, accounts.roles_of(username), 422, {"password": str(refused)})
        flask.flash(f"New password of {username} set; their sessions have ended.", "success")
        return flask.redirect(flask.url_for(".index"))


def register_account_screens(admin: Any, runtime: Runtime) -> None:
    """Add "My account" and "Users and roles" to the screens, in the menu group of the user
    screen (the deployment's own name for it, when its menu places users)."""
    category = next((group for group, entities in menu_layout(runtime.app_model) if any(e.name == "user" for e in entities)), CATEGORY)
    admin.add_view(MyAccountView(runtime, category))
    admin.add_view(UsersAndRolesView(runtime, category))
