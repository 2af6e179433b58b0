"""The metadata pipeline from a project folder to a frozen ``App``.

files -> located data (loader) -> merged layers (layers) -> JSON Schemas (schema)
-> entities (build) -> semantic rules (checks) -> App (build) + metadata hash.

Nothing here touches a database or runs metadata as code; plugins are imported
only to learn which hook names exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from formwork.metadata.build import Builder
from formwork.metadata.checks import Checker
from formwork.metadata.layers import Key, merge_layers, read_layer
from formwork.metadata.loader import Located
from formwork.metadata.model import APPROVAL_STATUSES, App, Entity, Field
from formwork.metadata.project import Project, load_project
from formwork.metadata.schema import schema_problems
from formwork.plugins import HookRegistry, load_plugins
from formwork.problems import Problem, ProblemsFound


def metadata_hash(app: App) -> str:
    """sha256 over the compiled metadata without source places: moving files, key order, comments,
    layout, YAML or JSON, shorthands and spelled-out defaults do not change it; any change of meaning does."""
    plain = _plain(dataclasses.asdict(dataclasses.replace(app, metadata_hash="")))
    text = json.dumps(plain, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if k != "place"}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def merged_metadata(project: Project) -> tuple[dict[Key, Located], list[Problem]]:
    """Every object of the project, layers merged over the built-ins, schema-checked and pruned."""
    problems: list[Problem] = []
    layers = []
    for folder in project.layers:
        objects, found = read_layer(folder, project.display)
        layers.append(objects)
        problems.extend(found)
    merged, found = merge_layers(layers)
    problems.extend(found)
    for (kind, _), data in merged.items():
        problems.extend(schema_problems(kind, data))
    return merged, problems


def _build_entities(objects: Mapping[Key, Located], builder: Builder) -> dict[str, Entity]:
    statuses: dict[str, Field] = {}
    for (kind, _), data in sorted(objects.items()):
        entity = data.get("entity")
        if not isinstance(entity, str) or entity in statuses:
            continue
        if kind == "workflow":
            states = tuple(s["name"] for s in data.get("states") or () if "name" in s)
            initial = data.get("initial")
            if initial in states:
                states = (initial, *(s for s in states if s != initial))
            statuses[entity] = builder.status_field(states, builder.state_labels(data))
        elif kind == "approval":
            statuses[entity] = builder.status_field(APPROVAL_STATUSES, builder.approval_status_labels())
    children = {
        spec["entity"]
        for (kind, _), data in objects.items()
        if kind == "entity"
        for spec in (data.get("fields") or {}).values()
        if isinstance(spec, dict) and spec.get("type") == "table" and isinstance(spec.get("entity"), str)
    }
    return {
        name: builder.entity(data, statuses.get(name), name in children)
        for (kind, name), data in sorted(objects.items())
        if kind == "entity"
    }


def validate_project(project: Project, registry: HookRegistry | None = None) -> tuple[App | None, list[Problem]]:
    """Every problem of the project's metadata at once, sorted by file and line, and the App when
    there are none. Never raises for user mistakes and never touches a database. Without a
    ``registry`` the project's plugins are loaded and their loading problems are included."""
    problems: list[Problem] = []
    if registry is None:
        registry = load_plugins(project.plugin_dirs, project.display)
        problems.extend(registry.problems)
    objects, found = merged_metadata(project)
    problems.extend(found)
    builder = Builder(project.default_locale)
    entities = _build_entities(objects, builder)
    problems.extend(Checker(objects, entities, registry.names(), project.locales if project.locales_declared else None).run())
    unique = sorted(dict.fromkeys(problems), key=Problem.sort_key)
    if unique:
        return None, unique
    return _assemble(project, objects, entities, builder), []


def _assemble(project: Project, objects: Mapping[Key, Located], entities: dict[str, Entity], builder: Builder) -> App:
    def of(kind: str) -> list[Located]:
        return [data for (k, _), data in sorted(objects.items()) if k == kind]

    app = next(iter(of("app")), None)
    compiled = App(
        name=app["name"] if app else project.name,
        label=builder.label(app.get("label"), app["name"]) if app else (dict(project.label) if project.label else builder.label(None, project.name)),
        version=str(app["version"]) if app and "version" in app else project.version,
        default_locale=project.default_locale,
        locales=project.locales,
        entities=entities,
        forms={d["name"]: builder.form(d, entities.get(d.get("entity", d["name"]))) for d in of("form")},
        workflows={d["name"]: builder.workflow(d) for d in of("workflow")},
        approvals={d["name"]: builder.approval(d) for d in of("approval")},
        roles={d["name"]: builder.role(d) for d in of("role")},
        reports={d["name"]: builder.report(d) for d in of("report")},
        menu=builder.menu(app),
        description=builder.label(app.get("description")) if app else {},
    )
    return dataclasses.replace(compiled, metadata_hash=metadata_hash(compiled))


def compile_project(project: Project, registry: HookRegistry | None = None) -> App:
    """The project's App; raises ProblemsFound carrying every problem when there are any."""
    app, problems = validate_project(project, registry)
    if app is None:
        raise ProblemsFound(problems)
    return app


def load_app(root: Path) -> App:
    """Read ``root/formwork.yaml`` and compile its metadata (plugins loaded from its folders)."""
    return compile_project(load_project(root))
