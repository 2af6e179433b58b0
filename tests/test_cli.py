"""The CLI as a consultant uses it: init, validate, plan, migrate, seed, serve; run as real processes."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.fixture
def acme(tmp_path: Path) -> Path:
    result = run_cli("init", "acme", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "acme"


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_init_scaffolds_a_deployment_that_validates(acme: Path) -> None:
    for relative in ("formwork.yaml", "metadata/customer/customer.yaml", "metadata/customer/customer_form.yaml", "plugins/customers.py"):
        assert (acme / relative).is_file(), relative
    result = run_cli("validate", cwd=acme)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK:")


def test_init_refuses_an_existing_deployment(acme: Path) -> None:
    before = (acme / "formwork.yaml").read_text()
    result = run_cli("init", str(acme), cwd=acme.parent)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert (acme / "formwork.yaml").read_text() == before


def test_validate_reports_every_mistake_located_without_traceback(acme: Path) -> None:
    entity = acme / "metadata/customer/customer.yaml"
    entity.write_text(entity.read_text().replace("required: true", "requird: true").replace("type: email", "type: emial"))
    (acme / "metadata/broken.yaml").write_text("kind: entity\nname: x\nfields: [a,\n")
    result = run_cli("validate", cwd=acme)
    assert result.returncode == 1
    assert_no_traceback(result)
    lines = result.stdout.splitlines()
    assert any(line.startswith("metadata/broken.yaml:") and "[FW-E004]" in line for line in lines), result.stdout
    requird = [line for line in lines if "requird" in line]
    assert requird and requird[0].startswith("metadata/customer/customer.yaml:") and "did you mean 'required'?" in requird[0]
    assert any("emial" in line for line in lines), result.stdout


def test_validate_json_format_gives_the_same_problems(acme: Path) -> None:
    entity = acme / "metadata/customer/customer.yaml"
    entity.write_text(entity.read_text().replace("required: true", "requird: true"))
    result = run_cli("validate", "--format", "json", cwd=acme)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    problem = next(p for p in document["problems"] if "requird" in p["message"])
    assert problem["file"] == "metadata/customer/customer.yaml"
    assert problem["line"] > 0 and problem["code"].startswith("FW-E")
    assert "required" in problem["hint"]


def test_missing_project_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("validate", "--project", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "[FW-E021]" in result.stdout and "formwork init" in result.stdout


def test_plan_migrate_plan_round_trip_keeps_data(acme: Path) -> None:
    url = f"sqlite:///{acme / 'instance' / 'formwork.db'}"
    plan = run_cli("plan", cwd=acme)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "customer" in plan.stdout and "safe" in plan.stdout
    assert not (acme / "instance" / "formwork.db").exists() or "customer" not in table_names(url)

    migrate = run_cli("migrate", cwd=acme)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "customer" in table_names(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customer (name, level, version) VALUES ('Acme', 'A', 1)"))
    engine.dispose()

    again = run_cli("plan", cwd=acme)
    assert again.returncode == 0 and "up to date" in again.stdout

    entity = acme / "metadata/customer/customer.yaml"
    entity.write_text(entity.read_text() + "  phone: {type: string, max_length: 30}\n")
    grown = run_cli("migrate", cwd=acme)
    assert grown.returncode == 0, grown.stdout + grown.stderr
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, level, phone FROM customer")).all()
    engine.dispose()
    assert rows == [("Acme", "A", None)]


def test_migrate_refuses_a_required_field_on_a_table_with_rows(acme: Path) -> None:
    url = f"sqlite:///{acme / 'instance' / 'formwork.db'}"
    assert run_cli("migrate", cwd=acme).returncode == 0
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customer (name, level, version) VALUES ('Acme', 'A', 1)"))
    entity = acme / "metadata/customer/customer.yaml"
    entity.write_text(entity.read_text() + "  tax_no: {type: string, required: true}\n")
    result = run_cli("migrate", cwd=acme)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "tax_no" in result.stdout and "1 row" in result.stdout
    columns = {c["name"] for c in sa.inspect(engine).get_columns("customer")}
    engine.dispose()
    assert "tax_no" not in columns


def test_database_url_environment_overrides_the_project_file(acme: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.db"
    result = run_cli("migrate", cwd=acme, env={"DATABASE_URL": f"sqlite:///{other}"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "customer" in table_names(f"sqlite:///{other}")
    assert not (acme / "instance" / "formwork.db").exists()


def test_unreachable_database_is_a_clear_error(acme: Path) -> None:
    result = run_cli("plan", cwd=acme, env={"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nothing"})
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "[FW-E030]" in result.stdout and "cannot connect" in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_seed_and_serve_the_scaffolded_deployment(acme: Path) -> None:
    seed = run_cli("seed", "--demo", cwd=acme)
    assert seed.returncode == 0, seed.stdout + seed.stderr
    created = run_cli("users", "create", "boss", "--password", "a long pass phrase", "--admin", cwd=acme)
    assert created.returncode == 0, created.stdout + created.stderr
    issued = run_cli("tokens", "create", "boss", cwd=acme)
    assert issued.returncode == 0, issued.stdout + issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    server = subprocess.Popen(
        [sys.executable, str(REPO / "cli.py"), "serve", "--port", str(port)], cwd=acme, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page, landed = "", ""
        for _ in range(100):
            try:
                with browser.open(f"{base}/admin/customer/", timeout=2) as response:
                    page, landed = response.read().decode(), response.url
                    break
            except OSError:
                time.sleep(0.2)
        assert "/login?next=/admin/customer/" in landed, "a visitor is sent to the login page"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf, page
        form = urllib.parse.urlencode({"csrf_token": csrf.group(1), "username": "boss", "password": "a long pass phrase",
                                       "next": "/admin/customer/"}).encode()
        with browser.open(f"{base}/login", data=form, timeout=10) as response:
            body = response.read().decode()
            assert response.url == f"{base}/admin/customer/"
        assert "Acme Trading" in body
        with urllib.request.urlopen(urllib.request.Request(f"{base}/api/v1/customer", headers={"Authorization": f"Bearer {token}"}), timeout=10) as response:
            assert response.status == 200 and "items" in json.loads(response.read())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/v1/customer", timeout=10)
        assert refused.value.code == 401
    finally:
        server.terminate()
        server.wait(timeout=10)
