"""Demo data: the YAML files of a deployment's ``demo`` folders written through RecordService.

Each file holds ``{entity: <name>, records: [{field: value, ...}, ...]}``. Files are read
in file name order (across all demo folders) and each is written in one transaction
with channel ``seed`` as the system actor. A link is given by the target's title
(``username`` for users, ``name`` for departments, else the target's ``title_field``)
or by its integer id; a table field by a list of row mappings. User records may also
carry ``password`` (stored as a scrypt hash) and ``roles`` (a list of role names). A
record under a workflow or approval may give its ``status``: a read-only field, which
the seed channel may write.

Links to records that a later file (or a later record of the same file) creates are
left empty at first and set in a second pass, so departments and their managers, or
users and their managers, may refer to each other in any order.

Seeding is idempotent: a file whose entity already has rows is skipped and reported.
Every file is checked before anything is written; a record the record service refuses
rolls back its file and stops the seeding with the problems found.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from formwork.metadata.loader import Located, LocatedList, load_file
from formwork.metadata.model import App, Entity, naming_field
from formwork.metadata.project import Project
from formwork.problems import Place, Problem, ProblemsFound, did_you_mean
from formwork.records import (
    RECORD,
    Actor,
    FieldError,
    PluginFailure,
    RecordInvalid,
    RecordQuery,
    RecordService,
)
from formwork.storage import Schema

CHANNEL = "seed"
FILE_KEYS = ("entity", "records")
USER_EXTRA_KEYS = ("password", "roles")
# Who a demo record is written as (its created_by): the person who may submit it for approval.
CREATOR_KEY = "created_by"
ROLE_TABLE = "fw_user_role"

# Problem codes of demo data (listed in docs/errors.md; the file format is in docs/screens.md).
SHAPE = "FW-E080"  # the file is not {entity: name, records: [mappings]}
UNKNOWN = "FW-E081"  # unknown entity, field or role
UNRESOLVED = "FW-E082"  # a link names no record
REFUSED = "FW-E083"  # the record service refused a record


@dataclass(frozen=True)
class SeededFile:
    """What happened to one demo file: ``created`` rows, or ``skipped`` with the reason."""

    file: str
    entity: str
    created: int = 0
    updated: int = 0
    skipped: str | None = None


@dataclass(frozen=True)
class SeedReport:
    """The outcome of ``seed_demo``: one entry per file, plus the links set in the second pass."""

    files: tuple[SeededFile, ...] = ()
    links_set_later: int = 0

    @property
    def created(self) -> dict[str, int]:
        """Entity name -> rows created."""
        totals: dict[str, int] = {}
        for item in self.files:
            if item.created:
                totals[item.entity] = totals.get(item.entity, 0) + item.created
        return totals

    @property
    def total_created(self) -> int:
        return sum(item.created for item in self.files)

    def lines(self) -> list[str]:
        """The report as lines for a terminal."""
        if not self.files:
            return ["No demo files found."]
        result = []
        for item in self.files:
            if item.skipped:
                result.append(f"{item.file}: skipped ({item.skipped})")
            else:
                done = f"{item.created} {item.entity} record(s) created"
                result.append(f"{item.file}: {done}" + (f", {item.updated} updated" if item.updated else ""))
        if self.links_set_later:
            result.append(f"{self.links_set_later} link(s) set after their targets were created")
        return result


@dataclass
class _DemoFile:
    display: str
    entity: Entity
    records: list[Located]


@dataclass
class _PendingLink:
    """A link whose target did not exist yet when its record was created."""

    entity: str
    record_id: int
    field: str
    target: str
    title: str
    place: Place


@dataclass
class _Titles:
    """Title -> id of every record of the entities links point to, kept current while seeding."""

    app: App
    records: RecordService
    known: dict[str, dict[str, int]] = field(default_factory=dict)

    def key_field(self, entity: str) -> str | None:
        return naming_field(self.app.entity(entity))

    def of(self, entity: str) -> dict[str, int]:
        if entity not in self.known:
            key = self.key_field(entity)
            rows = self.records.list(entity, Actor.system(), RecordQuery()) if key else []
            self.known[entity] = {str(row[key]): row["id"] for row in rows if key and row.get(key) is not None}
        return self.known[entity]

    def add(self, entity: str, record: dict[str, Any]) -> None:
        key = self.key_field(entity)
        if key and record.get(key) is not None:
            self.of(entity)[str(record[key])] = record["id"]


def demo_files(project: Project) -> list[Path]:
    """Every ``*.yaml`` / ``*.yml`` file of the demo folders, in file name order."""
    found = [
        path
        for folder in project.demo_dirs
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in (".yaml", ".yml")
    ]
    return sorted(found, key=lambda p: (p.name, str(p)))


def seed_demo(project: Project, records: RecordService) -> SeedReport:
    """Write the project's demo data; see the module docstring for the file format.

    Returns what was created and skipped. Raises ``ProblemsFound`` when a file is
    malformed or names unknown things (nothing is written then) or when the record
    service refuses a record (that file is rolled back; earlier files stay written).
    """
    app, schema = records.app, records.schema
    files = _read_files(project, app)
    skipped = {f.entity.name for f in files if records.count(f.entity.name, Actor.system(), RecordQuery()) > 0}
    titles = _Titles(app, records)
    _check_links(app, files, skipped, titles)
    results: list[SeededFile] = []
    pending: list[_PendingLink] = []
    hashes = _PasswordHashes()
    for demo in files:
        if demo.entity.name in skipped:
            results.append(SeededFile(demo.display, demo.entity.name, skipped=f"{demo.entity.name} already has records"))
            continue
        created, updated = _write_file(demo, app, schema, records, titles, hashes, pending)
        results.append(SeededFile(demo.display, demo.entity.name, created=created, updated=updated))
    _set_pending(pending, records, titles)
    return SeedReport(tuple(results), len(pending))


def _read_files(project: Project, app: App) -> list[_DemoFile]:
    """Load and check every demo file; raise ProblemsFound with all mistakes at once."""
    problems: list[Problem] = []
    files: list[_DemoFile] = []
    for path in demo_files(project):
        display = project.display(path)
        source, found = load_file(path, display)
        problems.extend(found)
        data = source.data if source is not None else None
        if found or data is None:
            if not found:
                problems.append(Problem(SHAPE, "the file is empty", Place(display, 1), hint="write {entity: <name>, records: [...]}"))
            continue
        demo = _check_file(data, display, app, problems)
        if demo is not None:
            files.append(demo)
    if problems:
        raise ProblemsFound(problems)
    return files


def _check_file(data: Any, display: str, app: App, problems: list[Problem]) -> _DemoFile | None:
    if not isinstance(data, Located):
        problems.append(Problem(SHAPE, "a demo file must be a mapping {entity: <name>, records: [...]}", Place(display, 1)))
        return None
    for key in data:
        if key not in FILE_KEYS:
            problems.append(Problem(SHAPE, f"unknown key '{key}'", data.place_of(key), str(key), did_you_mean(str(key), FILE_KEYS)))
    name = data.get("entity")
    if not isinstance(name, str) or name not in app.entities:
        hint = did_you_mean(str(name), list(app.entities)) if isinstance(name, str) else "name the entity these records belong to"
        problems.append(Problem(UNKNOWN, f"unknown entity {name!r}", data.value_place("entity") if "entity" in data else data.place, "entity", hint))
        return None
    entity = app.entity(name)
    if entity.is_child:
        problems.append(
            Problem(UNKNOWN, f"{name} holds child rows; give them in the parent's table field", data.value_place("entity"), "entity")
        )
        return None
    rows = data.get("records")
    if not isinstance(rows, LocatedList) or not all(isinstance(r, Located) for r in rows):
        problems.append(Problem(SHAPE, "'records' must be a list of mappings", data.value_place("records") if "records" in data else data.place, "records"))
        return None
    for index, record in enumerate(rows):
        _check_record(app, entity, record, f"records[{index}]", problems, top=True)
    return _DemoFile(display, entity, list(rows))


def _check_record(app: App, entity: Entity, record: Located, path: str, problems: list[Problem], top: bool) -> None:
    """Unknown fields, malformed table fields and unknown roles of one record (recursively)."""
    extra = USER_EXTRA_KEYS if top and entity.builtin and entity.name == "user" else ()
    for key, value in record.items():
        where = f"{path}.{key}"
        if top and key == CREATOR_KEY:
            if not isinstance(value, str) or not value:
                problems.append(Problem(SHAPE, f"'{CREATOR_KEY}' takes the username of the person who created the record", record.value_place(key), where))
            continue
        if key in extra:
            if key == "roles" and (not isinstance(value, list) or not all(isinstance(r, str) for r in value)):
                problems.append(Problem(SHAPE, "'roles' must be a list of role names", record.value_place(key), where))
            elif key == "roles":
                for role in value:
                    if role not in app.roles:
                        problems.append(Problem(UNKNOWN, f"unknown role '{role}'", record.value_place(key), where, did_you_mean(role, list(app.roles))))
            elif not isinstance(value, str) or not value:
                problems.append(Problem(SHAPE, "'password' must be a non-empty string", record.value_place(key), where))
            continue
        fld = entity.fields.get(str(key))
        if fld is None:
            problems.append(Problem(UNKNOWN, f"'{key}' is not a field of {entity.name}", record.place_of(key), where, did_you_mean(str(key), list(entity.fields) + list(extra))))
            continue
        if fld.type == "table":
            child = app.entities.get(fld.entity or "")
            if not isinstance(value, list) or not all(isinstance(r, Located) for r in value) or child is None:
                problems.append(Problem(SHAPE, f"'{key}' takes a list of row mappings", record.value_place(key), where))
                continue
            for index, row in enumerate(value):
                _check_record(app, child, row, f"{where}[{index}]", problems, top=False)
        elif fld.type == "link" and value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
            problems.append(Problem(SHAPE, f"'{key}' takes the title or the id of a {fld.to} record", record.value_place(key), where))


def _link_values(app: App, entity: Entity, record: Located, path: str) -> Iterator[tuple[Located, str, str, str, str]]:
    """(mapping, key, target entity, title, path) of every link given by title, in rows too.
    ``path`` is the record's own path; rows get ``path.field[i]``."""
    for key, value in record.items():
        fld = entity.fields.get(str(key))
        if fld is None:
            continue
        if fld.type == "link" and isinstance(value, str):
            yield record, str(key), fld.to or "", value, f"{path}.{key}"
        elif fld.type == "table" and isinstance(value, list):
            child = app.entity(fld.entity or "")
            for index, row in enumerate(value):
                yield from _link_values(app, child, row, f"{path}.{key}[{index}]")


def _titles_to_come(files: list[_DemoFile], skipped: set[str]) -> dict[str, set[str]]:
    """Entity -> titles the demo files will create (files of skipped entities excluded)."""
    coming: dict[str, set[str]] = {}
    for demo in files:
        key = naming_field(demo.entity)
        if demo.entity.name in skipped or key is None:
            continue
        for record in demo.records:
            if record.get(key) is not None:
                coming.setdefault(demo.entity.name, set()).add(str(record[key]))
    return coming


def _check_links(app: App, files: list[_DemoFile], skipped: set[str], titles: _Titles) -> None:
    """Every title must name a stored record or one the files create; rows and required
    links cannot wait for a second pass, so their targets must come first."""
    problems: list[Problem] = []
    coming = _titles_to_come(files, skipped)
    created_before: dict[str, set[str]] = {}
    for demo in files:
        if demo.entity.name in skipped:
            continue
        key = naming_field(demo.entity)
        for index, record in enumerate(demo.records):
            for mapping, name, target, title, path in _link_values(app, demo.entity, record, f"records[{index}]"):
                nested = mapping is not record
                place = mapping.value_place(name)
                if naming_field(app.entity(target)) is None:
                    problems.append(Problem(UNRESOLVED, f"{target} has no title field: give the record's id", place, path))
                    continue
                if title in titles.of(target) or title in created_before.get(target, set()):
                    continue
                if title not in coming.get(target, set()):
                    known = list(titles.of(target)) + sorted(coming.get(target, set()))
                    problems.append(Problem(UNRESOLVED, f"no {target} named '{title}'", place, path, did_you_mean(title, known)))
                elif nested or demo.entity.fields[name].required:
                    problems.append(
                        Problem(UNRESOLVED, f"{target} '{title}' is created later; this link cannot wait", place, path,
                                "move the file (or record) that creates it before this one")
                    )
            creator = record.get(CREATOR_KEY)
            if isinstance(creator, str) and creator not in titles.of("user") and creator not in created_before.get("user", set()):
                known = list(titles.of("user")) + sorted(coming.get("user", set()))
                hint = "create the user in an earlier file" if creator in coming.get("user", set()) else did_you_mean(creator, known)
                problems.append(Problem(UNRESOLVED, f"no user named '{creator}' exists before this record", record.value_place(CREATOR_KEY),
                                        f"records[{index}].{CREATOR_KEY}", hint))
            if key is not None and record.get(key) is not None:
                created_before.setdefault(demo.entity.name, set()).add(str(record[key]))
    if problems:
        raise ProblemsFound(problems)


def _resolve(app: App, entity: Entity, record: Located, titles: _Titles) -> tuple[dict[str, Any], dict[str, str]]:
    """The record's values with titles replaced by ids, and the links left for later (field -> title)."""
    values: dict[str, Any] = {}
    later: dict[str, str] = {}
    for key, value in record.items():
        if key == CREATOR_KEY or (key in USER_EXTRA_KEYS and entity.builtin and entity.name == "user"):
            continue
        fld = entity.fields[str(key)]
        if fld.type == "link" and isinstance(value, str):
            found = titles.of(fld.to or "").get(value)
            if found is None:
                later[str(key)] = value
                continue
            values[str(key)] = found
        elif fld.type == "table" and isinstance(value, list):
            child = app.entity(fld.entity or "")
            values[str(key)] = [_resolve(app, child, row, titles)[0] for row in value]
        else:
            values[str(key)] = _plain(value)
    return values, later


def _plain(value: Any) -> Any:
    """Located mappings and lists as plain ones (json fields)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _write_file(
    demo: _DemoFile,
    app: App,
    schema: Schema,
    records: RecordService,
    titles: _Titles,
    hashes: _PasswordHashes,
    pending: list[_PendingLink],
) -> tuple[int, int]:
    """Write the file's records in one transaction; return (created, updated).

    A record whose title names a record this seeding already wrote updates that record,
    so a later file can complete earlier ones (department managers once users exist)."""
    entity = demo.entity
    system = Actor.system()
    key = naming_field(entity)
    created = updated = 0
    file_pending: list[_PendingLink] = []
    with records.transaction() as conn:
        for index, record in enumerate(demo.records):
            values, later = _resolve(app, entity, record, titles)
            existing = titles.of(entity.name).get(str(record[key])) if key and record.get(key) is not None else None
            creator = record.get(CREATOR_KEY)
            # written as the named person (created_by), with the seed's full rights
            actor = system if creator is None else Actor(user_id=titles.of("user")[creator], username=creator, is_admin=True)
            try:
                if existing is None:
                    saved = records.create(entity.name, values, actor, CHANNEL)
                    created += 1
                else:
                    current = records.get(entity.name, existing, actor)
                    saved = records.update(entity.name, existing, values, actor, CHANNEL, version=current["version"])
                    updated += 1
            except RecordInvalid as invalid:
                raise ProblemsFound([_refusal(demo, index, record, error) for error in invalid.errors]) from None
            except PluginFailure as failure:
                raise ProblemsFound([_refusal(demo, index, record, FieldError(RECORD, "plugin", str(failure)))]) from None
            titles.add(entity.name, saved)
            for name, title in later.items():
                target = entity.fields[name].to or ""
                file_pending.append(_PendingLink(entity.name, saved["id"], name, target, title, record.value_place(name)))
            if entity.builtin and entity.name == "user":
                _write_credentials(conn, schema, saved["id"], record, hashes)
    pending.extend(file_pending)
    return created, updated


class _PasswordHashes:
    """Scrypt hashes of the demo passwords, one per distinct password.

    Scrypt is slow on purpose (a third of a second here); demo files give most users the
    same published password, so hashing it once keeps seeding quick. Equal hashes only
    tell what the demo's documentation already says."""

    def __init__(self) -> None:
        self.hashes: dict[str, str] = {}

    def of(self, password: str) -> str:
        if password not in self.hashes:
            self.hashes[password] = generate_password_hash(password, method="scrypt")
        return self.hashes[password]


def _write_credentials(conn: sa.Connection, schema: Schema, user_id: int, record: Located, hashes: _PasswordHashes) -> None:
    """The user's password hash and role memberships, in the seeding transaction."""
    users = schema.table("user")
    password = record.get("password")
    if password:
        hashed = hashes.of(password)
        conn.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=hashed))
    roles = schema.metadata.tables[ROLE_TABLE]
    held = set(conn.execute(sa.select(roles.c.role).where(roles.c.user_id == user_id)).scalars())
    for role in dict.fromkeys(record.get("roles") or ()):
        if role not in held:
            conn.execute(sa.insert(roles).values(user_id=user_id, role=role))


def _refusal(demo: _DemoFile, index: int, record: Located, error: FieldError) -> Problem:
    name = error.field.split(".")[0].split("[")[0]
    place = record.value_place(name) if name and name in record else record.place
    path = f"records[{index}]" + (f".{error.field}" if error.field else "")
    return Problem(REFUSED, f"{demo.entity.name} not created: {error.message}", place, path, "the whole file was rolled back")


def _set_pending(pending: list[_PendingLink], records: RecordService, titles: _Titles) -> None:
    """Second pass: set the links whose targets exist now, one update per record."""
    if not pending:
        return
    actor = Actor.system()
    by_record: dict[tuple[str, int], dict[str, int]] = {}
    places: dict[tuple[str, int], _PendingLink] = {}
    for link in pending:
        by_record.setdefault((link.entity, link.record_id), {})[link.field] = titles.of(link.target)[link.title]
        places.setdefault((link.entity, link.record_id), link)
    with records.transaction():
        for (entity, record_id), values in by_record.items():
            current = records.get(entity, record_id, actor)
            try:
                records.update(entity, record_id, values, actor, CHANNEL, version=current["version"])
            except RecordInvalid as invalid:
                link = places[(entity, record_id)]
                raise ProblemsFound(
                    [Problem(REFUSED, f"{entity} link not set: {e.message}", link.place, e.field or link.field,
                             "the second pass was rolled back") for e in invalid.errors]
                ) from None
