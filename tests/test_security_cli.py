"""``formwork users``, ``departments``, ``tokens`` and ``access`` on a real database:
what an admin sees, and that every mistake is one clear line, exit 1 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from security_world import write_project

from formwork.cli import cli
from formwork.security.passwords import verify_password

TABLES = ("fw_user", "fw_department", "fw_user_role", "fw_token", "fw_security_event", "fw_audit", "ticket")


@pytest.fixture
def deployment(tmp_path: Path, db_url: str) -> Path:
    root = write_project(tmp_path / "helpdesk", db_url)
    result = CliRunner().invoke(cli, ["migrate", "--project", str(root)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def run(deployment: Path):
    def invoke(*args: str, ok: bool = True):
        result = CliRunner().invoke(cli, [*args, "--project", str(deployment)])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def db(deployment: Path, db_url: str):
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


def snapshot(engine: sa.Engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY id"))] for t in TABLES}


@pytest.fixture
def staffed(run):
    run("departments", "create", "Head office", "--code", "HQ")
    run("departments", "create", "Sales", "--parent", "HQ")
    run("users", "create", "root", "--password", "root password 1", "--admin")
    run("users", "create", "alice", "--password", "alice password", "--role", "author", "--role", "dept", "--department", "Sales",
        "--full-name", "Alice Liddell", "--email", "alice@example.com")
    run("departments", "create", "Support", "--parent", "Sales", "--manager", "alice")
    return run


def test_an_admin_creates_departments_users_and_roles(staffed, db):
    users = staffed("users", "list").stdout.splitlines()
    assert users == ["alice\tAlice Liddell\tSales\tauthor, dept", "root\t\t-\tadmin"]
    departments = staffed("departments", "list").stdout.splitlines()
    assert "Support\t-\tparent: Sales\tmanager: alice" in departments
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM fw_user WHERE username = 'alice'")).scalar_one()
        created_by = conn.execute(sa.text("SELECT channel FROM fw_audit WHERE entity = 'user' ORDER BY id")).scalars().all()
    assert stored.startswith("scrypt:") and verify_password(stored, "alice password")
    assert created_by == ["cli", "cli"]
    staffed("users", "grant", "alice", "head")
    staffed("users", "revoke", "alice", "dept")
    assert staffed("users", "list").stdout.splitlines()[0] == "alice\tAlice Liddell\tSales\tauthor, head"
    log = staffed("access", "events", "--user", "alice").stdout
    assert "role_revoked\talice\tby system" in log and "role=dept" in log and "user_created\talice" in log


BAD_INPUT = [
    (("users", "create", "bob", "--password", "bob password", "--role", "autor"), "role 'autor' is not defined in the metadata (did you mean 'author'?)"),
    (("users", "create", "bob", "--password", "bob password", "--department", "Nowhere"), "no department named 'Nowhere'"),
    (("users", "create", "bob", "--password", "short"), "the password must be at least 8 characters long"),
    (("users", "create", "bob", "--password", "bob"), "the password must be at least 8 characters long"),
    (("users", "create", "alice", "--password", "another password"), "username: must be unique"),
    (("users", "create", "bob", "--password", "bob password", "--email", "not-an-email"), "email: must be an email address"),
    (("users", "grant", "alicia", "head"), "no user named 'alicia' (did you mean 'alice'?)"),
    (("users", "grant", "alice", "ghost"), "role 'ghost' is not defined in the metadata"),
    (("users", "grant", "alice", "author"), "user 'alice' already has role 'author'"),
    (("users", "revoke", "alice", "head"), "user 'alice' does not have role 'head'"),
    (("users", "deactivate", "nobody"), "no user named 'nobody'"),
    (("users", "set-password", "alice", "--password", "alice"), "the password must be at least 8 characters long"),
    (("users", "set-password", "nobody", "--password", "long enough 1"), "no user named 'nobody'"),
    (("departments", "create", "East", "--parent", "Nowhere"), "no department named 'Nowhere'"),
    (("departments", "create", "East", "--manager", "nobody"), "no user named 'nobody'"),
    (("tokens", "create", "nobody"), "no user named 'nobody'"),
    (("tokens", "create", "alice", "--expires-in", "soon"), "'soon' is not a duration"),
    (("tokens", "revoke", "4242"), "no token with id 4242 to revoke"),
    (("access", "explain", "--user", "nobody", "--entity", "ticket"), "no user named 'nobody'"),
    (("access", "explain", "--user", "alice", "--entity", "tickets"), "no entity named 'tickets'"),
]


def test_bad_input_is_one_clear_line_exit_1_and_nothing_written(staffed, db):
    before = snapshot(db)
    for args, message in BAD_INPUT:
        result = staffed(*args, ok=False)
        assert result.exit_code == 1, args
        assert message in result.stderr, (args, result.output)
        assert "Traceback" not in result.output
        assert snapshot(db) == before, args


def test_a_password_equal_to_the_username_is_refused(staffed, db):
    before = snapshot(db)
    result = staffed("users", "create", "longusername", "--password", "LongUserName", ok=False)
    assert result.exit_code == 1 and "must not be the username" in result.stderr
    assert snapshot(db) == before


def test_tokens_are_printed_once_as_the_last_line_and_stored_hashed(staffed, db):
    result = staffed("tokens", "create", "alice", "--expires-in", "30d", "--name", "ci")
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("fw_") and len(token) == 46
    listed = staffed("tokens", "list", "alice").stdout
    assert token not in listed and token[:10] in listed and "\tci\tactive\t" in listed
    with db.connect() as conn:
        assert token not in str(conn.execute(sa.text("SELECT * FROM fw_token")).all())
    token_id = listed.split("\t")[0]
    staffed("tokens", "revoke", token_id)
    assert "\trevoked\t" in staffed("tokens", "list", "alice").stdout
    assert "token_revoked" in staffed("access", "events", "--event", "token_revoked").stdout


def test_deactivation_is_logged_and_refuses_new_tokens(staffed, db):
    staffed("users", "deactivate", "alice")
    assert "(deactivated)" in staffed("users", "list").stdout
    result = staffed("tokens", "create", "alice", ok=False)
    assert result.exit_code == 1 and "deactivated" in result.stderr
    assert "user_deactivated\talice" in staffed("access", "events").stdout
    assert "alice is deactivated" in staffed("access", "explain", "--user", "alice", "--entity", "ticket").stdout


def test_access_explain_says_which_role_grants_what_and_why_a_record_shows(staffed, db):
    staffed("users", "grant", "alice", "head")
    with db.begin() as conn:
        sales = conn.execute(sa.text("SELECT id FROM fw_department WHERE name = 'Sales'")).scalar_one()
        conn.execute(sa.text("INSERT INTO fw_department (name, version) VALUES ('Elsewhere', 1)"))
        other = conn.execute(sa.text("SELECT id FROM fw_department WHERE name = 'Elsewhere'")).scalar_one()
        conn.execute(sa.text("INSERT INTO ticket (title, department, version) VALUES ('in sales', :d, 1), ('elsewhere', :o, 1)"),
                     {"d": sales, "o": other})
        inside, outside = conn.execute(sa.text("SELECT id FROM ticket ORDER BY id")).scalars().all()
    text = staffed("access", "explain", "--user", "alice", "--entity", "ticket", "--record", str(inside)).stdout
    assert "alice holds: author, dept, head" in text
    assert "  dept: read, update; rows: department; hidden: secret_note; read-only: title, lines" in text
    assert "ticket: refused (403): import, escalate" in text
    assert f"record {inside}: visible: dept, head" in text
    assert f"  author: rows owner == $user: does not hold for record {inside}" in text
    text = staffed("access", "explain", "--user", "alice", "--entity", "ticket", "--record", str(outside)).stdout
    assert f"record {outside}: not visible (404): no read grant's rows include it" in text
    assert "administrator" in staffed("access", "explain", "--user", "root", "--entity", "ticket").stdout


def test_access_matrix_lists_every_grant_with_inheritance(run):
    rows = json.loads(run("access", "matrix", "--format", "json").stdout)
    head = {(r["entity"], r["via"]): r for r in rows if r["role"] == "head"}
    assert head[("ticket", "head")]["actions"] == ["read", "export", "report"]
    assert head[("ticket", "author")]["rows"] == "owner == $user"
    assert head[("ticket", "author")]["read_only"] == ["budget"]
    assert {r["entity"] for r in rows if r["role"] == "admin"} == {"ticket", "memo", "user", "department"}
    csv_lines = run("access", "matrix", "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == "role,entity,via,actions,rows,hidden,read_only"
    assert "dept,ticket,dept,read update,department,secret_note,title lines" in csv_lines
    text = run("access", "matrix").stdout.splitlines()
    assert text[0].split() == ["role", "entity", "via", "actions", "rows", "hidden", "read_only"]
    assert len(text) == len(csv_lines)


def test_validate_catches_row_rules_naming_unknown_fields_or_mismatched_types(deployment):
    (deployment / "metadata" / "roles" / "broken.yaml").write_text(
        'kind: role\nname: broken\ngrants:\n  ticket: {actions: [read], rows: "ownr == $user"}\n'
        '  memo: {actions: [read], rows: "text == 3"}\n', "utf-8")
    result = CliRunner().invoke(cli, ["validate", "--project", str(deployment)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("metadata/roles/broken.yaml:4: grants.ticket.rows: [FW-E406] unknown field 'ownr'") for line in lines)
    assert any(line.startswith("metadata/roles/broken.yaml:5: grants.memo.rows: [FW-E407] cannot compare text with a whole number")
               for line in lines)


def test_commands_on_a_database_never_migrated_say_so(tmp_path: Path, db_url: str):
    root = write_project(tmp_path / "fresh", db_url)
    result = CliRunner().invoke(cli, ["users", "create", "root", "--password", "root password 1", "--admin", "--project", str(root)])
    assert result.exit_code == 1
    assert "the database has not been migrated yet: run 'formwork migrate' first" in result.stderr
    with sa.create_engine(db_url).connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
