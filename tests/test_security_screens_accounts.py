"""The account screens: "My account" (own password and API tokens) and "Users and roles"
(admins assign roles and reset passwords), through a test client and in a real Chromium,
with refusals shown and nothing written; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from browser import served_page
from security_world import PASSWORD, build_world
from web_login import logged_in

from formwork.web import create_app


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Any]:
    world = build_world(tmp_path / "helpdesk", db_url, passwords=True)
    world.web = create_app(world.project, app_model=world.app, engine=world.engine, config={"TESTING": True})
    world.screens = lambda username: logged_in(world.web.test_client(), world.web.extensions["formwork"], username)
    yield world
    world.engine.dispose()


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def roles_of(site: Any, username: str) -> list[str]:
    return site.accounts.roles_of(username)


def password_hash(site: Any, username: str) -> str:
    users = site.schema.tables["user"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(users.c.password_hash).where(users.c.username == username)).scalar_one()


def test_users_and_roles_is_for_admins_only(site: Any) -> None:
    alice = site.screens("alice")
    assert alice.get("/admin/user-roles/").status_code == 403
    page = alice.get("/admin/account/").text
    before = roles_of(site, "bob")
    response = alice.post(f"/admin/user-roles/{site.users['bob']}/roles", data={"csrf_token": csrf(page), "roles": ["admin"]})
    assert response.status_code == 403
    assert roles_of(site, "bob") == before
    assert "Users and roles" not in page and "My account" in page


def test_an_admin_assigns_roles_and_unknown_roles_are_refused(site: Any) -> None:
    root = site.screens("root")
    listing = root.get("/admin/user-roles/").text
    assert "bob" in listing and "dept" in listing
    page = root.get(f"/admin/user-roles/{site.users['bob']}").text
    assert 'value="dept" id="role_dept" checked' in page
    refused = root.post(f"/admin/user-roles/{site.users['bob']}/roles", data={"csrf_token": csrf(page), "roles": ["reader", "superuser"]})
    assert refused.status_code == 422 and "role &#39;superuser&#39; is not defined in the metadata" in refused.text
    assert roles_of(site, "bob") == ["dept"]
    no_csrf = root.post(f"/admin/user-roles/{site.users['bob']}/roles", data={"roles": ["reader"]})
    assert no_csrf.status_code == 403 and roles_of(site, "bob") == ["dept"]
    saved = root.post(f"/admin/user-roles/{site.users['bob']}/roles", data={"csrf_token": csrf(page), "roles": ["reader", "head"]})
    assert saved.status_code == 302 and roles_of(site, "bob") == ["head", "reader"]
    own = root.post(f"/admin/user-roles/{site.users['root']}/roles", data={"csrf_token": csrf(page), "roles": ["reader"]})
    assert own.status_code == 422 and "cannot take the admin role from yourself" in own.text and roles_of(site, "root") == ["admin"]
    assert root.get("/admin/user-roles/999999").status_code == 404


def test_changing_my_password_needs_the_current_one_and_matching_new_ones(site: Any) -> None:
    alice = site.screens("alice")
    token = csrf(alice.get("/admin/account/").text)
    before = password_hash(site, "alice")
    wrong = alice.post("/admin/account/password", data={"csrf_token": token, "current_password": "nope", "password": "a new secret",
                                                        "confirm": "a new secret"})
    assert wrong.status_code == 422 and "is not your current password" in wrong.text
    differ = alice.post("/admin/account/password", data={"csrf_token": token, "current_password": PASSWORD, "password": "a new secret",
                                                         "confirm": "a new secreT"})
    assert differ.status_code == 422 and "the two new passwords differ" in differ.text
    assert password_hash(site, "alice") == before
    done = alice.post("/admin/account/password", data={"csrf_token": token, "current_password": PASSWORD, "password": "a new secret",
                                                       "confirm": "a new secret"})
    assert done.status_code == 302 and password_hash(site, "alice") != before


def test_my_tokens_are_shown_once_and_only_mine_can_be_revoked(site: Any) -> None:
    alice = site.screens("alice")
    bobs = site.accounts.create_token("bob")
    token = csrf(alice.get("/admin/account/").text)
    bad = alice.post("/admin/account/tokens", data={"csrf_token": token, "name": "ci", "expires_in": "soon"})
    assert bad.status_code == 422 and "is not a duration" in bad.text and site.accounts.list_tokens("alice") == []
    made = alice.post("/admin/account/tokens", data={"csrf_token": token, "name": "ci", "expires_in": "30d"})
    assert made.status_code == 201
    secret = re.search(r'<code class="formwork-token">(fw_[^<]+)</code>', made.text).group(1)
    assert secret not in alice.get("/admin/account/").text
    assert alice.post(f"/admin/account/tokens/{bobs.id}/revoke", data={"csrf_token": token}).status_code == 404
    assert site.accounts.list_tokens("bob")[0].revoked_at is None
    (mine,) = site.accounts.list_tokens("alice")
    assert alice.post(f"/admin/account/tokens/{mine.id}/revoke", data={"csrf_token": token}).status_code == 302
    assert site.accounts.list_tokens("alice")[0].revoked_at is not None


@pytest.mark.browser
def test_an_admin_gives_a_role_in_the_browser_and_the_user_sees_more(site: Any) -> None:
    with served_page(site.web) as (page, base):
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "root")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit], input[type=submit]")
        page.goto(f"{base}/admin/user-roles/")
        page.locator("tr", has_text="dave").locator("text=Change").click()
        page.check("#role_head")
        page.click("text=Save roles")
        page.wait_for_url(re.compile(r"/admin/user-roles/$"))
        assert "Roles of dave saved." in page.locator(".alert").all_inner_texts()[-1]
        assert roles_of(site, "dave") == ["head", "reader"]
        assert "head, reader" in page.locator("tr", has_text="dave").inner_text()

        page.goto(f"{base}/admin/account/")
        page.fill("#token_name", "deploy")
        page.fill("#expires_in", "7d")
        page.click("text=Create token")
        secret = page.locator("code.formwork-token").inner_text()
        assert secret.startswith("fw_")
        assert site.web.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json["username"] == "root"
