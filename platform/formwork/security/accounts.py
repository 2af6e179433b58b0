"""Users, departments and role assignments, as an admin changes them.

Users and departments are ordinary records written through ``RecordService`` (channel
``cli`` or ``api``), so they get the same validation, audit trail and events as any record.
What is not a field lives beside the record: the password hash (a column the service never
reads) and the role rows of ``fw_user_role``. Each operation is one transaction, with its
security event; a refusal raises ``AccountError`` and writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import ADMIN_ROLE, App
from formwork.problems import did_you_mean
from formwork.records import Actor, RecordInvalid, RecordService
from formwork.records.coerce import to_utc
from formwork.security import audit, sessions, tokens
from formwork.security.grants import role_closure
from formwork.security.login import locked_message, locked_until
from formwork.security.passwords import (
    PasswordRejected,
    check_password_policy,
    hash_password,
    verify_password,
)
from formwork.security.tables import SecurityTables, security_tables
from formwork.storage import Schema


class AccountError(Exception):
    """A refused account operation; ``str()`` is the message for the admin. Nothing was written.
    ``field`` names the input at fault where there is one (for the API's error list), ``code``
    says what kind of refusal it is."""

    def __init__(self, message: str, field: str = "", code: str = "refused"):
        super().__init__(message)
        self.field = field
        self.code = code


@dataclass(frozen=True)
class UserInfo:
    """A user as ``users list`` shows it."""

    id: int
    username: str
    full_name: str | None
    email: str | None
    department: str | None
    active: bool
    roles: tuple[str, ...]


@dataclass(frozen=True)
class DepartmentInfo:
    """A department as ``departments list`` shows it."""

    id: int
    name: str
    code: str | None
    parent: str | None
    manager: str | None


def load_actor(conn: sa.Connection, app: App, schema: Schema, user_id: int) -> Actor | None:
    """The ``Actor`` of an active user (roles from ``fw_user_role``, admin when a held role is
    or inherits ``admin``), or None when the user does not exist or is deactivated."""
    users = schema.tables["user"]
    actor, _row = _actor_through(conn, app, schema, users, users.c.id, user_id)
    return actor


@dataclass(frozen=True)
class Credential:
    """Who a token or session belongs to, read in one query: ``actor`` is None when the
    credential is unknown, expired, revoked or its user is deactivated. ``token_id`` and
    ``last_used_at`` let the caller note a token's use."""

    actor: Actor | None
    token_id: int | None = None
    last_used_at: datetime | None = None


def actor_for_token(conn: sa.Connection, app: App, schema: Schema, token: str, now: datetime) -> Credential:
    """The actor behind a bearer token: the token row, its user and the user's roles in one
    query (this runs on every API request). A malformed token costs no query."""
    if not tokens.well_formed(token):
        return Credential(None)
    table = security_tables(schema.metadata).tokens
    actor, row = _actor_through(conn, app, schema, table, table.c.token_hash, tokens.token_hash(token),
                                "id", "expires_at", "revoked_at", "last_used_at")
    if actor is None or row is None or row.credential_revoked_at is not None:
        return Credential(None)
    if row.credential_expires_at is not None and to_utc(row.credential_expires_at) <= now:
        return Credential(None)
    last_used = None if row.credential_last_used_at is None else to_utc(row.credential_last_used_at)
    return Credential(actor, int(row.credential_id), last_used)


def actor_for_session(conn: sa.Connection, app: App, schema: Schema, session_id: str, now: datetime) -> Credential:
    """The actor of a live login session (session row, user and roles in one query)."""
    digest = sessions.session_digest(session_id)
    if digest is None:
        return Credential(None)
    table = security_tables(schema.metadata).sessions
    actor, row = _actor_through(conn, app, schema, table, table.c.session_hash, digest, "expires_at")
    if actor is None or row is None or to_utc(row.credential_expires_at) <= now:
        return Credential(None)
    return Credential(actor)


def _actor_through(conn: sa.Connection, app: App, schema: Schema, source: sa.Table, key: sa.Column[Any], value: Any,
                   *extra: str) -> tuple[Actor | None, sa.Row[Any] | None]:
    """The active user that the row of ``source`` whose ``key`` is ``value`` leads to
    (``source`` is the user table itself, or a table with a ``user_id`` column), with their
    roles. Returns (actor, first row) so callers can read the ``extra`` columns of ``source``."""
    statement = _actor_statement(schema.tables["user"], security_tables(schema.metadata).user_roles, source, key.name, extra)
    rows = conn.execute(statement, {"fw_key": value}).all()
    if not rows or rows[0].active is False:
        return None, None
    row = rows[0]
    held = frozenset(r.role for r in rows if r.role is not None)
    is_admin = ADMIN_ROLE in role_closure(app, held)
    return Actor(user_id=int(row.id), username=row.username, roles=held, department_id=row.department, is_admin=is_admin), row


@functools.lru_cache(maxsize=64)
def _actor_statement(users: sa.Table, roles: sa.Table, source: sa.Table, key: str, extra: tuple[str, ...]) -> sa.Select[Any]:
    """The user-and-roles query through ``source`` (one row per role held), built once: it
    runs on every authenticated request."""
    joined = users if source is users else source.join(users, users.c.id == source.c.user_id)
    columns = [source.c[name].label(f"credential_{name}") for name in extra]
    return (
        sa.select(*columns, users.c.id, users.c.username, users.c.department, users.c.active, roles.c.role)
        .select_from(joined.outerjoin(roles, roles.c.user_id == users.c.id))
        .where(source.c[key] == sa.bindparam("fw_key"))
    )


class Accounts:
    """Admin operations on users, departments, roles and tokens of one deployment.

    ``actor_name`` (who does it) goes to the security log; the records are written as the
    system actor on ``channel``."""

    def __init__(self, records: RecordService, actor_name: str = "system", channel: str = "cli",
                 clock: Callable[[], datetime] | None = None):
        self.records = records
        self.app = records.app
        self.tables = records.tables
        self.security: SecurityTables = security_tables(records.schema.metadata)
        self.actor_name = actor_name
        self.channel = channel
        self.clock = clock or (lambda: datetime.now(UTC))

    # ----------------------------------------------------------------- look-ups

    def user_id(self, conn: sa.Connection, username: str) -> int:
        """The id of ``username``; ``AccountError`` naming close usernames when unknown."""
        users = self.tables["user"]
        found = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
        if found is None:
            known = list(conn.execute(sa.select(users.c.username)).scalars())
            hint = did_you_mean(username, known)
            raise AccountError(f"no user named '{username}'" + (f" ({hint})" if hint else ""), "user", "unknown_user")
        return int(found)

    def require_user(self, username: str) -> int:
        """The id of ``username`` (``AccountError`` when unknown), on a connection of its own."""
        with self.records.engine.connect() as conn:
            return self.user_id(conn, username)

    def department_id(self, conn: sa.Connection, name: str) -> int:
        """The id of the department with code or name ``name``; ``AccountError`` when there is
        none or the name is shared by several departments."""
        departments = self.tables["department"]
        by_code = conn.execute(sa.select(departments.c.id).where(departments.c.code == name)).scalar()
        if by_code is not None:
            return int(by_code)
        found = list(conn.execute(sa.select(departments.c.id).where(departments.c.name == name)).scalars())
        if len(found) > 1:
            raise AccountError(f"{len(found)} departments are named '{name}': give the department's code instead")
        if not found:
            known = list(conn.execute(sa.select(departments.c.name)).scalars())
            hint = did_you_mean(name, known)
            raise AccountError(f"no department named '{name}'" + (f" ({hint})" if hint else ""))
        return int(found[0])

    def check_role(self, role: str) -> None:
        """``AccountError`` unless metadata defines ``role``."""
        if role not in self.app.roles:
            hint = did_you_mean(role, list(self.app.roles))
            raise AccountError(f"role '{role}' is not defined in the metadata" + (f" ({hint})" if hint else "")
                               + "; roles: " + ", ".join(sorted(self.app.roles)), "roles", "unknown_role")

    # ----------------------------------------------------------------- users

    def create_user(self, username: str, password: str | None, *, full_name: str | None = None, email: str | None = None,
                    department: str | None = None, roles: Iterable[str] = (), admin: bool = False) -> dict[str, Any]:
        """Create an active user with a password (checked against the policy) and roles."""
        wanted = list(dict.fromkeys([*roles, *([ADMIN_ROLE] if admin else [])]))
        for role in wanted:
            self.check_role(role)
        if password is not None:
            self._check_password(password, username)
        now = self.clock()
        with self.records.transaction() as conn:
            values: dict[str, Any] = {"username": username, "active": True}
            if full_name is not None:
                values["full_name"] = full_name
            if email is not None:
                values["email"] = email
            if department is not None:
                values["department"] = self.department_id(conn, department)
            record = self._write(lambda: self.records.create("user", values, Actor.system(), self.channel))
            if password is not None:
                self._store_hash(conn, record["id"], password)
            self._event(conn, "user_created", now, username)
            for role in wanted:
                self._grant(conn, record["id"], username, role, now)
        return record

    def set_password(self, username: str, password: str) -> None:
        """Replace a user's password; the user's sessions end (tokens stay)."""
        self._check_password(password, username)
        now = self.clock()
        with self.records.transaction() as conn:
            user_id = self.user_id(conn, username)
            self._store_hash(conn, user_id, password)
            sessions.end_user_sessions(conn, self.security.sessions, user_id)
            self._event(conn, "password_changed", now, username)

    def change_own_password(self, username: str, current: str, new: str, remote_addr: str | None = None) -> None:
        """A user replaces their own password, proving the current one first. Wrong current
        passwords count as failed logins (the same lockout applies), so a stolen session
        cannot be used to guess the password; the user's other sessions end."""
        now = self.clock()
        users = self.tables["user"]
        attempts = self.security.login_attempts
        with self.records.transaction() as conn:
            until = locked_until(conn, attempts, username, now)
            if until is not None:
                raise AccountError(locked_message(until, now), "current_password", "locked")
            stored = conn.execute(sa.select(users.c.password_hash).where(users.c.username == username)).scalar()
            right = verify_password(stored, current or "")
        if not right:
            with self.records.transaction() as conn:
                conn.execute(sa.insert(attempts).values(username=username, at=now, succeeded=False, remote_addr=(remote_addr or "")[:64] or None))
                audit.record_event(conn, self.security.events, "password_change_failed", now, username=username, actor=username,
                                   remote_addr=remote_addr)
            raise AccountError("is not your current password", "current_password", "wrong_password")
        self.set_password(username, new)  # checks the policy first

    def deactivate(self, username: str) -> None:
        """Deactivate a user: their sessions end, their tokens and login stop working."""
        now = self.clock()
        with self.records.transaction() as conn:
            user_id = self.user_id(conn, username)
            current = self.records.get("user", user_id, Actor.system())
            if current["active"] is False:
                raise AccountError(f"user '{username}' is already deactivated")
            self._write(lambda: self.records.update("user", user_id, {"active": False}, Actor.system(), self.channel, current["version"]))
            sessions.end_user_sessions(conn, self.security.sessions, user_id)
            self._event(conn, "user_deactivated", now, username)

    def grant(self, username: str, role: str) -> None:
        """Give ``username`` the metadata role ``role``."""
        self.check_role(role)
        now = self.clock()
        with self.records.transaction() as conn:
            user_id = self.user_id(conn, username)
            if role in self._roles_of(conn, user_id):
                raise AccountError(f"user '{username}' already has role '{role}'")
            self._grant(conn, user_id, username, role, now)

    def revoke(self, username: str, role: str) -> None:
        """Take role ``role`` from ``username``."""
        now = self.clock()
        with self.records.transaction() as conn:
            user_id = self.user_id(conn, username)
            if role not in self._roles_of(conn, user_id):
                raise AccountError(f"user '{username}' does not have role '{role}'")
            roles = self.security.user_roles
            conn.execute(sa.delete(roles).where(roles.c.user_id == user_id, roles.c.role == role))
            self._event(conn, "role_revoked", now, username, {"role": role})

    def roles_of(self, username: str) -> list[str]:
        """The roles ``username`` holds, sorted."""
        with self.records.engine.connect() as conn:
            return sorted(self._roles_of(conn, self.user_id(conn, username)))

    def set_roles(self, username: str, roles: Iterable[str]) -> list[str]:
        """Make ``roles`` exactly the roles of ``username`` (each grant and revocation is a
        security event); returns them sorted. Every role must be defined in the metadata, and
        the acting admin cannot take the admin role from themselves (another admin must)."""
        wanted = set(roles)
        for role in sorted(wanted):
            self.check_role(role)
        if username == self.actor_name and ADMIN_ROLE not in role_closure(self.app, frozenset(wanted)):
            raise AccountError("you cannot take the admin role from yourself: another admin must do it", "roles", "self_lockout")
        now = self.clock()
        table = self.security.user_roles
        with self.records.transaction() as conn:
            user_id = self.user_id(conn, username)
            held = self._roles_of(conn, user_id)
            for role in sorted(held - wanted):
                conn.execute(sa.delete(table).where(table.c.user_id == user_id, table.c.role == role))
                self._event(conn, "role_revoked", now, username, {"role": role})
            for role in sorted(wanted - held):
                self._grant(conn, user_id, username, role, now)
        return sorted(wanted)

    def list_users(self) -> list[UserInfo]:
        """Every user with department name and roles, by username."""
        users, departments, roles = self.tables["user"], self.tables["department"], self.security.user_roles
        with self.records.engine.connect() as conn:
            held: dict[int, list[str]] = {}
            for user_id, role in conn.execute(sa.select(roles.c.user_id, roles.c.role).order_by(roles.c.role)):
                held.setdefault(user_id, []).append(role)
            query = (
                sa.select(users.c.id, users.c.username, users.c.full_name, users.c.email, users.c.active, departments.c.name)
                .select_from(users.outerjoin(departments, departments.c.id == users.c.department))
                .order_by(users.c.username)
            )
            return [UserInfo(r.id, r.username, r.full_name, r.email, r.name, r.active is not False, tuple(held.get(r.id, ())))
                    for r in conn.execute(query)]

    # ----------------------------------------------------------------- departments

    def create_department(self, name: str, *, code: str | None = None, parent: str | None = None, manager: str | None = None) -> dict[str, Any]:
        """Create a department under ``parent`` (name or code) managed by ``manager`` (username)."""
        with self.records.transaction() as conn:
            values: dict[str, Any] = {"name": name}
            if code is not None:
                values["code"] = code
            if parent is not None:
                values["parent"] = self.department_id(conn, parent)
            if manager is not None:
                values["manager"] = self.user_id(conn, manager)
            return self._write(lambda: self.records.create("department", values, Actor.system(), self.channel))

    def list_departments(self) -> list[DepartmentInfo]:
        """Every department with its parent's name and its manager's username, by name."""
        departments, users = self.tables["department"], self.tables["user"]
        parent = departments.alias("parent")
        query = (
            sa.select(departments.c.id, departments.c.name, departments.c.code, parent.c.name.label("parent"), users.c.username)
            .select_from(departments.outerjoin(parent, parent.c.id == departments.c.parent)
                         .outerjoin(users, users.c.id == departments.c.manager))
            .order_by(departments.c.name, departments.c.id)
        )
        with self.records.engine.connect() as conn:
            return [DepartmentInfo(r.id, r.name, r.code, r.parent, r.username) for r in conn.execute(query)]

    # ----------------------------------------------------------------- tokens

    def create_token(self, username: str, expires_in: Any = None, name: str | None = None) -> tokens.IssuedToken:
        """A new personal token of an active user (``expires_in`` a timedelta or None)."""
        now = self.clock()
        with self.records.transaction() as conn:
            user_id = self.user_id(conn, username)
            if self.records.get("user", user_id, Actor.system())["active"] is False:
                raise AccountError(f"user '{username}' is deactivated: a token would not work")
            issued = tokens.issue_token(conn, self.security.tokens, user_id, now, expires_in, name)
            self._event(conn, "token_created", now, username, {"token_id": issued.id, "name": name,
                                                               "expires_at": issued.expires_at.isoformat() if issued.expires_at else None})
            return issued

    def list_tokens(self, username: str) -> list[tokens.TokenInfo]:
        """The tokens of a user (never the secrets)."""
        with self.records.engine.connect() as conn:
            return tokens.list_tokens(conn, self.security.tokens, self.user_id(conn, username))

    def revoke_token(self, token_id: int) -> None:
        """Revoke a token by id; ``AccountError`` when there is no such active token."""
        now = self.clock()
        users = self.tables["user"]
        with self.records.transaction() as conn:
            user_id = tokens.revoke_token(conn, self.security.tokens, token_id, now)
            if user_id is None:
                raise AccountError(f"no token with id {token_id} to revoke (unknown or already revoked)")
            username = conn.execute(sa.select(users.c.username).where(users.c.id == user_id)).scalar()
            self._event(conn, "token_revoked", now, username, {"token_id": token_id})

    # ----------------------------------------------------------------- helpers

    def _write(self, write: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return write()
        except RecordInvalid as invalid:
            raise AccountError("; ".join(f"{e.field or 'record'}: {e.message}" for e in invalid.errors)) from None

    def _check_password(self, password: str, username: str) -> None:
        try:
            check_password_policy(password, username)
        except PasswordRejected as rejected:
            raise AccountError(str(rejected), "password", "password_policy") from None

    def _store_hash(self, conn: sa.Connection, user_id: int, password: str) -> None:
        users = self.tables["user"]
        conn.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=hash_password(password)))

    def _roles_of(self, conn: sa.Connection, user_id: int) -> set[str]:
        roles = self.security.user_roles
        return set(conn.execute(sa.select(roles.c.role).where(roles.c.user_id == user_id)).scalars())

    def _grant(self, conn: sa.Connection, user_id: int, username: str, role: str, now: datetime) -> None:
        conn.execute(sa.insert(self.security.user_roles).values(user_id=user_id, role=role))
        self._event(conn, "role_granted", now, username, {"role": role})

    def _event(self, conn: sa.Connection, event: str, now: datetime, username: str | None, detail: dict[str, Any] | None = None) -> None:
        audit.record_event(conn, self.security.events, event, now, username=username, actor=self.actor_name, detail=detail)
