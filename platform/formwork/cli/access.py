"""``formwork users``, ``departments``, ``tokens`` and ``access``: accounts and permissions
from the command line.

Users and departments are written through ``RecordService`` as the system actor on channel
``cli``. A mistake (unknown user, role or department, a weak password) prints one clear
line on stderr, exits 1 and writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from formwork.cli.context import project_option, resolve_project
from formwork.cli.database import compiled, open_engine
from formwork.security.accounts import AccountError, Accounts, load_actor
from formwork.security.audit import EVENTS, read_events
from formwork.security.explain import access_matrix, explain_access
from formwork.security.policy import RolePolicy
from formwork.security.tokens import parse_duration
from formwork.storage import read_state
from formwork.web.runtime import Runtime


def _runtime(project_dir: Path | None) -> Runtime:
    """The deployment's runtime; exit 1 when its database was never migrated."""
    from formwork.web.app import build_runtime

    project = resolve_project(project_dir)
    app = compiled(project)
    engine = open_engine(project)
    if read_state(engine) is None:
        _fail("the database has not been migrated yet: run 'formwork migrate' first")
    return build_runtime(project, app, engine)


@contextmanager
def _accounts(project_dir: Path | None) -> Iterator[Accounts]:
    """The deployment's accounts; an ``AccountError`` becomes ``error: ...`` and exit 1."""
    runtime = _runtime(project_dir)
    try:
        yield Accounts(runtime.records)
    except AccountError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    finally:
        runtime.engine.dispose()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


# ----------------------------------------------------------------------------- users


@click.group("users")
def users_group() -> None:
    """Create, list and deactivate users; set passwords; grant and revoke roles."""


@users_group.command("create")
@click.argument("username")
@click.option("--password", help="The password (at least 8 characters); asked for when left out.")
@click.option("--admin", is_flag=True, help="Give the user the admin role: every action on every record.")
@click.option("--role", "roles", multiple=True, help="A role from the metadata (repeat for several).")
@click.option("--department", help="Department name or code.")
@click.option("--full-name", help="The person's full name.")
@click.option("--email", help="The person's e-mail address.")
@project_option
def users_create(username: str, password: str | None, admin: bool, roles: tuple[str, ...], department: str | None,
                 full_name: str | None, email: str | None, project_dir: Path | None) -> None:
    """Create an active user USERNAME with a password and roles."""
    with _accounts(project_dir) as accounts:
        for role in roles:
            accounts.check_role(role)
        if password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        record = accounts.create_user(username, password, full_name=full_name, email=email, department=department,
                                      roles=roles, admin=admin)
    held = [*roles, *(["admin"] if admin else [])]
    click.echo(f"Created user {username} (id {record['id']})" + (f" with roles: {', '.join(dict.fromkeys(held))}" if held else ""))


@users_group.command("list")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@project_option
def users_list(output_format: str, project_dir: Path | None) -> None:
    """List users with department, roles and whether they are active."""
    with _accounts(project_dir) as accounts:
        users = accounts.list_users()
    if output_format == "json":
        click.echo(json.dumps([u.__dict__ | {"roles": list(u.roles)} for u in users], ensure_ascii=False, indent=2))
        return
    for u in users:
        state = "" if u.active else "  (deactivated)"
        click.echo(f"{u.username}\t{u.full_name or ''}\t{u.department or '-'}\t{', '.join(u.roles) or '-'}{state}")


@users_group.command("deactivate")
@click.argument("username")
@project_option
def users_deactivate(username: str, project_dir: Path | None) -> None:
    """Deactivate USERNAME: their sessions end and their tokens stop working at once."""
    with _accounts(project_dir) as accounts:
        accounts.deactivate(username)
    click.echo(f"Deactivated user {username}.")


@users_group.command("set-password")
@click.argument("username")
@click.option("--password", help="The new password (at least 8 characters); asked for when left out.")
@project_option
def users_set_password(username: str, password: str | None, project_dir: Path | None) -> None:
    """Set a new password for USERNAME (their sessions end)."""
    with _accounts(project_dir) as accounts:
        accounts.require_user(username)
        if password is None:
            password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
        accounts.set_password(username, password)
    click.echo(f"Password of {username} changed.")


@users_group.command("grant")
@click.argument("username")
@click.argument("role")
@project_option
def users_grant(username: str, role: str, project_dir: Path | None) -> None:
    """Give USERNAME the metadata role ROLE."""
    with _accounts(project_dir) as accounts:
        accounts.grant(username, role)
    click.echo(f"Granted role {role} to {username}.")


@users_group.command("revoke")
@click.argument("username")
@click.argument("role")
@project_option
def users_revoke(username: str, role: str, project_dir: Path | None) -> None:
    """Take the role ROLE from USERNAME."""
    with _accounts(project_dir) as accounts:
        accounts.revoke(username, role)
    click.echo(f"Revoked role {role} from {username}.")


# ----------------------------------------------------------------------------- departments


@click.group("departments")
def departments_group() -> None:
    """Create and list departments (a tree, each with a manager)."""


@departments_group.command("create")
@click.argument("name")
@click.option("--code", help="A unique short code.")
@click.option("--parent", help="The parent department (name or code).")
@click.option("--manager", help="The manager's username.")
@project_option
def departments_create(name: str, code: str | None, parent: str | None, manager: str | None, project_dir: Path | None) -> None:
    """Create the department NAME."""
    with _accounts(project_dir) as accounts:
        record = accounts.create_department(name, code=code, parent=parent, manager=manager)
    click.echo(f"Created department {name} (id {record['id']}).")


@departments_group.command("list")
@project_option
def departments_list(project_dir: Path | None) -> None:
    """List departments with parent and manager."""
    with _accounts(project_dir) as accounts:
        departments = accounts.list_departments()
    for d in departments:
        click.echo(f"{d.name}\t{d.code or '-'}\tparent: {d.parent or '-'}\tmanager: {d.manager or '-'}")


# ----------------------------------------------------------------------------- tokens


@click.group("tokens")
def tokens_group() -> None:
    """Personal API tokens: create (shown once), list, revoke."""


@tokens_group.command("create")
@click.argument("username")
@click.option("--expires-in", default="90d", show_default=True, help="Lifetime: 30d, 12h, 45m, 2w, or 'never'.")
@click.option("--name", help="What the token is for.")
@project_option
def tokens_create(username: str, expires_in: str, name: str | None, project_dir: Path | None) -> None:
    """Create a token for USERNAME and print it (last line). It is shown only this once."""
    try:
        lifetime = None if expires_in == "never" else parse_duration(expires_in)
    except ValueError as error:
        _fail(str(error))
        return
    with _accounts(project_dir) as accounts:
        issued = accounts.create_token(username, lifetime, name)
    expiry = issued.expires_at.isoformat(timespec="seconds") if issued.expires_at else "never"
    click.echo(f"Token {issued.id} for {username}, expires {expiry}. Copy it now: it is not shown again.", err=True)
    click.echo(issued.token)


@tokens_group.command("list")
@click.argument("username")
@project_option
def tokens_list(username: str, project_dir: Path | None) -> None:
    """List the tokens of USERNAME (never the secrets)."""
    with _accounts(project_dir) as accounts:
        found = accounts.list_tokens(username)
        now = accounts.clock()
    for t in found:
        expiry = t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never"
        used = t.last_used_at.isoformat(timespec="minutes") if t.last_used_at else "never"
        click.echo(f"{t.id}\t{t.prefix}…\t{t.name or '-'}\t{t.state(now)}\texpires {expiry}\tlast used {used}")


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@project_option
def tokens_revoke(token_id: int, project_dir: Path | None) -> None:
    """Revoke the token TOKEN_ID: it stops working at once."""
    with _accounts(project_dir) as accounts:
        accounts.revoke_token(token_id)
    click.echo(f"Revoked token {token_id}.")


# ----------------------------------------------------------------------------- access


@click.group("access")
def access_group() -> None:
    """Read the permissions: explain a user's access, the role matrix, the security log."""


@access_group.command("explain")
@click.option("--user", "username", required=True, help="The username.")
@click.option("--entity", required=True, help="The entity.")
@click.option("--record", "record_id", type=int, help="A record id: say why it is or is not visible.")
@project_option
def access_explain(username: str, entity: str, record_id: int | None, project_dir: Path | None) -> None:
    """Which of USER's roles grant what on ENTITY, and why a record is or is not visible."""
    runtime = _runtime(project_dir)
    app = runtime.app_model
    if entity not in app.entities:
        _fail(f"no entity named '{entity}'")
    policy = RolePolicy(app, runtime.schema.tables, runtime.engine)
    accounts = Accounts(runtime.records)
    with runtime.engine.connect() as conn:
        try:
            user_id = accounts.user_id(conn, username)
        except AccountError as error:
            _fail(str(error))
        actor = load_actor(conn, app, runtime.schema, user_id)
        if actor is None:
            click.echo(f"{username} is deactivated: every request is refused (401).")
            return
        for line in explain_access(app, policy, conn, dict(runtime.schema.tables), actor, entity, record_id):
            click.echo(line)


@access_group.command("matrix")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "csv"]), default="text")
@project_option
def access_matrix_command(output_format: str, project_dir: Path | None) -> None:
    """Print every role × entity × action grant (inherited ones included), for review."""
    project = resolve_project(project_dir)
    rows = access_matrix(compiled(project))
    if output_format == "json":
        click.echo(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    header = ["role", "entity", "via", "actions", "rows", "hidden", "read_only"]
    cells = [[r.role, r.entity, r.via, " ".join(r.actions), r.rows, " ".join(r.hidden), " ".join(r.read_only)] for r in rows]
    if output_format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(cells)
        click.echo(out.getvalue(), nl=False)
        return
    widths = [max(len(str(c)) for c in column) for column in zip(header, *cells, strict=True)]
    for line in [header, *cells]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


@access_group.command("events")
@click.option("--user", "username", help="Only events of this user (as subject or actor).")
@click.option("--event", type=click.Choice(EVENTS), help="Only this kind of event.")
@click.option("--limit", type=int, default=50, show_default=True)
@project_option
def access_events(username: str | None, event: str | None, limit: int, project_dir: Path | None) -> None:
    """Show the security log, newest first: logins, failures, lockouts, tokens, roles."""
    runtime = _runtime(project_dir)
    accounts = Accounts(runtime.records)
    with runtime.engine.connect() as conn:
        events = read_events(conn, accounts.security.events, username=username, event=event, limit=limit)
    for e in events:
        detail = " ".join(f"{k}={_shown(v)}" for k, v in sorted(e.detail.items()))
        click.echo(f"{e.at.isoformat(timespec='seconds')}\t{e.event}\t{e.username or '-'}\tby {e.actor or '-'}\t{e.remote_addr or '-'}\t{detail}".rstrip())


def _shown(value: Any) -> str:
    return "-" if value is None else str(value)

