"""Roles from metadata enforced by RecordService: actions (403), rows (404), hidden and
read-only fields, on a real SQLite file and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from security_world import PEOPLE, build_world

from formwork.records import Actor, PermissionDenied, RecordInvalid, RecordNotFound, RecordQuery
from formwork.records.query import Condition
from formwork.security.grants import role_closure

ENTITIES = ("ticket", "memo")
ACTIONS = ("create", "read", "update", "delete", "export", "import", "report", "escalate")
MISSING = 999_999


@pytest.fixture
def world(tmp_path: Path, db_url: str):
    built = build_world(tmp_path / "helpdesk", db_url)
    yield built
    built.engine.dispose()


def expected_actions(world, role: str, entity: str) -> set[str]:
    """The grants as metadata states them, inheritance followed by hand."""
    if role == "admin":
        return set(ACTIONS)
    found: set[str] = set()
    for name in role_closure(world.app, [role]):
        grant = world.app.roles[name].grants.get(entity)
        if grant is not None:
            found |= set(grant.actions)
    return found


def outcome(world, actor: Actor, entity: str, action: str) -> str:
    """What the service answers for one action, without writing anything: 'denied' (403)
    or 'allowed' (the call got past the permission check to the record's own problems)."""
    records = world.records
    try:
        if action == "create":
            records.create(entity, {}, actor, "api")
        elif action == "read":
            records.get(entity, MISSING, actor)
        elif action == "update":
            records.update(entity, MISSING, {}, actor, "api", 1)
        elif action == "delete":
            records.delete(entity, MISSING, actor, "api")
        else:
            records.policy.authorize(action, entity, actor, "api", None)
            return "allowed"
    except PermissionDenied:
        return "denied"
    except (RecordNotFound, RecordInvalid):
        return "allowed"
    raise AssertionError(f"{action} on {entity} neither refused nor reached the record")


def test_every_role_entity_and_action_matches_the_grants(world):
    before = world.snapshot()
    for username, (roles, _department) in PEOPLE.items():
        actor = world.actor(username)
        for entity in ENTITIES:
            allowed = expected_actions(world, roles[0], entity)
            for action in ACTIONS:
                if action == "escalate" and entity != "ticket":
                    continue
                want = "allowed" if action in allowed else "denied"
                assert outcome(world, actor, entity, action) == want, (username, entity, action)
    assert world.snapshot() == before


def test_a_user_without_roles_is_refused_everything(world):
    world.accounts.create_user("nobody", None)
    actor = world.actor("nobody")
    with pytest.raises(PermissionDenied, match="you may not read ticket records"):
        world.records.list("ticket", actor, RecordQuery())
    with pytest.raises(PermissionDenied):
        world.records.count("memo", actor, RecordQuery())


def titles(world, username: str, entity: str = "ticket", **query) -> list[str]:
    field = "title" if entity == "ticket" else "text"
    return sorted(r[field] for r in world.records.list(entity, world.actor(username), RecordQuery(**query)))


def test_row_rules_own_department_tree_and_expression(world):
    world.ticket("alice's", "alice", "SALES")
    world.ticket("dave's", "dave", "OPS")
    world.ticket("east", "bob", "EAST")
    world.ticket("hq", None, "HQ")
    world.ticket("Carol", None, "OPS")

    assert titles(world, "alice") == ["alice's"]                    # owner == $user
    assert titles(world, "bob") == ["alice's"]                      # department: Sales only
    assert titles(world, "carol") == ["alice's", "east", "hq"]      # department_tree from HQ (+ her own)
    assert titles(world, "dave") == ["Carol", "alice's", "dave's", "east", "hq"]  # rows: all
    assert world.records.count("ticket", world.actor("bob"), RecordQuery()) == 1


def test_a_row_outside_the_rules_is_not_found_for_every_action(world):
    theirs = world.ticket("dave's", "dave", "OPS")
    alice = world.actor("alice")
    before = world.snapshot()
    with pytest.raises(RecordNotFound):
        world.records.get("ticket", theirs["id"], alice)
    with pytest.raises(RecordNotFound):
        world.records.update("ticket", theirs["id"], {"title": "mine now"}, alice, "api", theirs["version"])
    with pytest.raises(RecordNotFound):
        world.records.delete("ticket", theirs["id"], alice, "api")
    assert world.snapshot() == before


def test_a_readable_row_outside_the_update_rules_is_refused_403(world):
    # carol reads Sales tickets through head (department_tree) but updates only her own (author)
    sales = world.ticket("sales", "alice", "SALES")
    carol = world.actor("carol")
    assert world.records.get("ticket", sales["id"], carol)["title"] == "sales"
    before = world.snapshot()
    with pytest.raises(PermissionDenied, match="may not update this ticket"):
        world.records.update("ticket", sales["id"], {"budget": "5"}, carol, "api", sales["version"])
    with pytest.raises(PermissionDenied, match="may not delete this ticket"):
        world.records.delete("ticket", sales["id"], carol, "api")
    assert world.snapshot() == before


def test_own_and_department_of_an_entity_without_department_field_follow_the_creator(world):
    alice, carol = world.actor("alice"), world.actor("carol")
    world.records.create("memo", {"text": "from alice"}, alice, "api")
    world.records.create("memo", {"text": "from carol"}, carol, "api")
    assert titles(world, "alice", "memo") == ["from alice"]             # own
    assert titles(world, "bob", "memo") == ["from alice"]               # creator in Sales
    assert titles(world, "carol", "memo") == ["from alice", "from carol"]  # creators in HQ's tree
    assert titles(world, "dave", "memo") == []                          # own, and he wrote none


def test_a_create_that_would_fall_outside_the_rows_is_refused_and_rolled_back(world):
    alice = world.actor("alice")
    before = world.snapshot()
    with pytest.raises(PermissionDenied, match="outside the records"):
        world.records.create("ticket", {"title": "for dave", "owner": world.users["dave"]}, alice, "api")
    assert world.snapshot() == before
    mine = world.records.create("ticket", {"title": "for me", "owner": world.users["alice"]}, alice, "api")
    assert mine["department"] == world.departments["SALES"]  # default $user.department
    before = world.snapshot()
    with pytest.raises(PermissionDenied, match="outside the records"):
        world.records.update("ticket", mine["id"], {"owner": world.users["dave"]}, alice, "api", mine["version"])
    assert world.snapshot() == before


def test_hidden_fields_are_absent_from_every_read(world):
    note = world.ticket("noted", "alice", "SALES", secret_note="the code is 1234")
    for username in ("bob", "dave"):
        actor = world.actor(username)
        assert "secret_note" not in world.records.get("ticket", note["id"], actor)
        assert all("secret_note" not in r for r in world.records.list("ticket", actor, RecordQuery()))
    # hidden per grant: carol sees the note of her own ticket (author) but not of others (head)
    mine = world.ticket("carol's", "carol", "HQ", secret_note="mine")
    carol = world.actor("carol")
    assert world.records.get("ticket", mine["id"], carol)["secret_note"] == "mine"
    assert "secret_note" not in world.records.get("ticket", note["id"], carol)
    listed = {r["title"]: r for r in world.records.list("ticket", carol, RecordQuery())}
    assert listed["carol's"]["secret_note"] == "mine" and "secret_note" not in listed["noted"]
    # the admin and the owner see everything
    assert world.records.get("ticket", note["id"], world.actor("root"))["secret_note"] == "the code is 1234"
    assert world.records.get("ticket", note["id"], world.actor("alice"))["secret_note"] == "the code is 1234"


@pytest.mark.parametrize(
    "query",
    [
        {"filters": {"secret_note": "the code is 1234"}},
        {"conditions": (Condition("secret_note", "startswith", "the code"),)},
        {"sort": ("-secret_note",)},
        {"expression": "secret_note == 'the code is 1234'"},
        {"expression": "startswith(secret_note, 'the')"},
        {"search": "1234", "search_fields": ("secret_note",)},
    ],
)
def test_hidden_values_cannot_be_guessed_through_filters_sort_or_search(world, query):
    world.ticket("noted", "alice", "SALES", secret_note="the code is 1234")
    with pytest.raises(RecordInvalid) as refused:
        world.records.list("ticket", world.actor("dave"), RecordQuery(**query))
    assert refused.value.errors[0].code == "hidden"
    assert "hidden from you" in refused.value.errors[0].message
    with pytest.raises(RecordInvalid):
        world.records.count("ticket", world.actor("dave"), RecordQuery(**query))


def test_hidden_fields_of_linked_records_cannot_be_filtered_through_the_link(world):
    world.ticket("noted", "alice", "SALES", secret_note="x")
    # a path through a link to a field the user may see is fine
    assert titles(world, "dave", expression="owner.username == 'alice'") == ["noted"]
    with pytest.raises(RecordInvalid):
        world.records.list("ticket", world.actor("dave"), RecordQuery(expression="secret_note != None"))


def test_writing_hidden_and_read_only_fields_is_refused_with_field_errors(world):
    ticket = world.ticket("sales", "alice", "SALES", budget="10.00", lines=[{"item": "pen", "quantity": 1}])
    bob = world.actor("bob")
    before = world.snapshot()
    with pytest.raises(RecordInvalid) as refused:
        world.records.update("ticket", ticket["id"], {"secret_note": "x", "title": "renamed", "lines": []}, bob, "api", ticket["version"])
    codes = {e.field: e.code for e in refused.value.errors}
    assert codes == {"secret_note": "hidden", "title": "read_only", "lines": "read_only"}
    assert world.snapshot() == before
    # the same values sent back unchanged are fine (a form posting every field)
    stored = world.records.get("ticket", ticket["id"], world.actor("root"))
    lines = [{"id": r["id"], "item": r["item"], "quantity": r["quantity"]} for r in stored["lines"]]
    saved = world.records.update("ticket", ticket["id"], {"title": "sales", "lines": lines, "budget": "12.50"}, bob, "screen", ticket["version"])
    assert str(saved["budget"]) == "12.50" and "secret_note" not in saved
    # alice may not set her budget (author: read_only) on create nor change it later
    alice = world.actor("alice")
    with pytest.raises(RecordInvalid) as refused:
        world.records.create("ticket", {"title": "t", "owner": world.users["alice"], "budget": "99"}, alice, "api")
    assert [(e.field, e.code, e.message) for e in refused.value.errors] == [("budget", "read_only", "is read-only for you")]


def test_field_rules_also_bind_imports_but_not_the_system(world):
    alice = world.actor("alice")
    with pytest.raises(RecordInvalid):
        world.records.create_many("ticket", [{"title": "a", "owner": world.users["alice"], "budget": "1"}], alice, "import")
    created = world.records.create("ticket", {"title": "sys", "budget": "3", "secret_note": "n"}, Actor.system(), "cli")
    assert created["secret_note"] == "n"


def test_mass_assignment_of_system_fields_is_refused(world):
    alice = world.actor("alice")
    before = world.snapshot()
    values = {"title": "t", "owner": world.users["alice"], "id": 77, "created_by": world.users["dave"], "version": 9,
              "created_at": "2020-01-01T00:00:00"}
    with pytest.raises(RecordInvalid) as refused:
        world.records.create("ticket", values, alice, "api")
    assert {e.field for e in refused.value.errors if e.code == "system_field"} == {"id", "created_by", "version", "created_at"}
    assert world.snapshot() == before


def test_user_values_in_row_rules_are_bound_parameters_not_sql(world):
    sneaky = "x' OR '1'='1"
    world.accounts.create_user("mallory", None, full_name="') OR 1=1 --", roles=["named"])
    world.ticket("public", None, "OPS")
    world.ticket(sneaky, None, "OPS")
    assert world.records.list("ticket", world.actor("mallory"), RecordQuery()) == []
    world.accounts.create_user(sneaky, None, roles=["named"])
    assert [r["title"] for r in world.records.list("ticket", world.actor(sneaky), RecordQuery())] == [sneaky]
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ticket")).scalar_one() == 2


def test_custom_actions_follow_their_grants(world):
    policy = world.records.policy
    policy.authorize("escalate", "ticket", world.actor("erin"), "api", None)
    with pytest.raises(PermissionDenied, match="you may not escalate ticket records"):
        policy.authorize("escalate", "ticket", world.actor("dave"), "api", None)


def test_the_workflow_channel_writes_what_the_workflow_engine_allowed(world):
    # dave (reader) has no update grant, bob (dept) cannot see Operations' tickets: the
    # workflow engine checked the transition's roles or the approver's task, and writes
    ticket = world.ticket("ops", "dave", "OPS")
    saved = world.records.update("ticket", ticket["id"], {"budget": "4"}, world.actor("dave"), "workflow", None)
    assert str(saved["budget"]) == "4.00"
    world.records.update("ticket", ticket["id"], {"budget": "5"}, world.actor("bob"), "workflow", None)
    assert str(world.records.get("ticket", ticket["id"], world.actor("root"))["budget"]) == "5.00"
    with pytest.raises(RecordNotFound):
        world.records.update("ticket", ticket["id"], {"budget": "6"}, world.actor("bob"), "api", 2)


def test_users_with_the_same_row_rule_each_list_their_own_rows_again_and_again(tmp_path: Path, db_url: str) -> None:
    # the list statement is prepared once per row filter: two users of one role must never share it
    people = {"sam": (("dept",), "SALES"), "otto": (("dept",), "OPS"), "ann": (("author",), "SALES"), "abe": (("author",), "OPS")}
    world = build_world(tmp_path / "helpdesk", db_url, people)
    try:
        for n in range(3):
            world.ticket(f"sales {n}", "ann", "SALES")
            world.ticket(f"ops {n}", "abe", "OPS")
        actors = {name: world.actor(name) for name in people}
        wanted = {"sam": "sales", "otto": "ops", "ann": "sales", "abe": "ops"}
        for _round in range(3):
            for name, prefix in wanted.items():
                listed = {
                    "newest two": [r["title"] for r in world.records.list("ticket", actors[name], RecordQuery(sort=("-id",), limit=2))],
                    "all": [r["title"] for r in world.records.list("ticket", actors[name], RecordQuery(sort=("id",)))],
                    "sales 1": [r["title"] for r in world.records.list("ticket", actors[name], RecordQuery(filters={"title": "sales 1"}))],
                }
                assert listed == {
                    "newest two": [f"{prefix} 2", f"{prefix} 1"],
                    "all": [f"{prefix} 0", f"{prefix} 1", f"{prefix} 2"],
                    "sales 1": ["sales 1"] if prefix == "sales" else [],
                }, name
    finally:
        world.engine.dispose()
