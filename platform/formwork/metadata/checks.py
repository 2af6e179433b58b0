"""Semantic rules on merged metadata: names, references, flows, roles and reports.

The schemas say each value has the right shape; these rules say the values fit
together: every name is usable, every reference resolves, every state is
reachable, every expression is valid over the fields it names. Each rule
reports a ``Problem`` with a stable FW-E2xx code (expressions: FW-E4xx from the
expression module) at the place of the node at fault, and checking goes on, so
one call reports everything.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from typing import Any

from formwork.expressions import ExpressionError, FieldScope, expression_problems, parse
from formwork.expressions.nodes import BoolOp, Compare, Literal, Node, Not
from formwork.metadata.build import ROW_SCOPES, RULE_KINDS, duration
from formwork.metadata.builtins import BUILTIN_PLACE, builtin_fields
from formwork.metadata.loader import Located, dotted, place_at
from formwork.metadata.model import (
    BUILTIN_ENTITIES,
    CHILD_FIELDS,
    DATERANGE_PRESETS,
    STATUS_FIELD,
    SYSTEM_FIELD_TYPES,
    SYSTEM_FIELDS,
    Entity,
)
from formwork.metadata.schema import label_paths
from formwork.problems import Place, Problem, did_you_mean

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 50
STANDARD_ACTIONS = ("create", "read", "update", "delete", "export", "import", "report")
# Words that would make a table or column name clash with SQL or with the expression language.
RESERVED_WORDS = frozenset(
    """
    all alter analyse analyze and any array as asc asymmetric authorization between both by case cast check
    collate column constraint create cross current_date current_role current_time current_timestamp
    current_user default deferrable delete desc distinct do drop else end except exists false fetch for
    foreign from full grant group having in index initially inner insert intersect into is join key
    lateral leading left like limit localtime localtimestamp natural not null offset on only or order
    outer over placing primary references returning revoke right select session_user set some symmetric
    table then to trailing true union unique update user using values variadic when where window with
    assert async await break class continue def del elif except finally global if import lambda none
    nonlocal pass raise return try while yield
    """.split()
)
# Paths the REST API serves beside /api/v1/<entity>: an entity of that name could not be listed.
API_ROUTE_NAMES = frozenset({"tasks", "notifications", "workflow", "me"})
NUMERIC = ("integer", "decimal")
STRINGISH = ("string", "text", "email")
PARAM_VARIABLE_TYPES = {
    "string": "string",
    "choice": "string",
    "integer": "integer",
    "decimal": "decimal",
    "boolean": "boolean",
    "date": "date",
    "daterange": "daterange",
}
_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
_NUMBER_TOKEN = re.compile(r"\{([^{}]*)\}")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _node(data: Any, path: list) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


class Checker:
    """Runs every semantic rule over the merged objects and the entities built from them."""

    def __init__(
        self,
        objects: Mapping[tuple[str, str], Located],
        entities: Mapping[str, Entity],
        hooks: Iterable[str],
        locales: Iterable[str] | None,
    ):
        self.objects = objects
        self.entities = entities
        self.hooks = set(hooks)
        self.locales = tuple(locales) if locales is not None else None
        self.problems: list[Problem] = []
        self.roles = {name for kind, name in objects if kind == "role"}
        self.reports = {name for kind, name in objects if kind == "report"}

    # reporting ------------------------------------------------------------------------------------

    def add(self, code: str, message: str, data: Located, path: list, hint: str | None = None, at_key: bool = False) -> None:
        place: Place | None
        if at_key and path:
            parent = _node(data, path[:-1])
            place = parent.place_of(path[-1]) if isinstance(parent, Located) else place_at(data, path)
        else:
            place = place_at(data, path)
        self.problems.append(Problem(code, message, place, dotted(path), hint))

    def run(self) -> list[Problem]:
        """All problems of the whole project's metadata."""
        apps = [data for (kind, _), data in self.objects.items() if kind == "app"]
        for extra in apps[1:]:
            self.add("FW-E203", f"a second app object '{extra['name']}'; a deployment has at most one", extra, ["name"], f"the first is in {apps[0].place}")
        for (kind, name), data in sorted(self.objects.items()):
            if self.check_name(kind, name, data, ["name"], identifier=kind == "entity" and name not in BUILTIN_ENTITIES):
                if kind == "entity" and name in API_ROUTE_NAMES:
                    self.add("FW-E202", f"entity name '{name}' is reserved: /api/v1/{name} is a path of the REST API (workflow inbox, notifications, statistics, the caller's account)",
                             data, ["name"], f"choose another name, for example 'project_{name}'")
            getattr(self, f"check_{kind}")(data)
            self.check_label_locales(kind, data)
        self.check_flows_per_entity()
        self.check_children()
        return self.problems

    # names ----------------------------------------------------------------------------------------

    def check_name(self, what: str, name: str, data: Located, path: list, identifier: bool = False, at_key: bool = False) -> bool:
        """A usable name: snake_case, at most 50 characters; identifiers also avoid reserved words."""
        if not isinstance(name, str) or not NAME.match(name) or len(name) > MAX_NAME:
            suggestion = snake_case(str(name))
            self.add(
                "FW-E201",
                f"{what} name '{name}' is not snake_case (lower-case letters, digits and _, starting with a letter, at most {MAX_NAME} characters)",
                data,
                path,
                f"for example '{suggestion}'" if suggestion and NAME.match(suggestion) else None,
                at_key,
            )
            return False
        if identifier and (name in RESERVED_WORDS or name.startswith("fw_")):
            reason = "names starting with fw_ belong to Formwork" if name.startswith("fw_") else "it is a reserved word in SQL or in expressions"
            self.add("FW-E202", f"{what} name '{name}' is reserved: {reason}", data, path, "drop the fw_ prefix" if name.startswith("fw_") else "choose another name", at_key)
            return False
        return True

    def check_label_locales(self, kind: str, data: Located) -> None:
        """Every locale of a label is one the project lists, so no translation is silently unused.
        A project that lists no locales shows any label's first locale, so nothing is checked."""
        if self.locales is None:
            return
        for path in label_paths(kind, data):
            label = _node(data, path)
            for locale in label:
                place = label.place_of(locale) if isinstance(label, Located) else None
                if locale not in self.locales and place is not None and place.file != BUILTIN_PLACE.file:
                    self.add(
                        "FW-E237",
                        f"locale '{locale}' is not one of the project's locales: {', '.join(self.locales)}",
                        data,
                        [*path, locale],
                        _locale_hint(locale, self.locales) or f"add it to 'locales' in formwork.yaml, e.g. locales: [{', '.join((*self.locales, locale))}]",
                        True,
                    )

    # field lookup ---------------------------------------------------------------------------------

    def field_types(self, entity: str) -> dict[str, str]:
        """Every field name usable on ``entity`` -> 'type' or 'link:<to>' / 'table:<child>'; '?' when broken."""
        found = dict(SYSTEM_FIELD_TYPES)
        raw = self.objects.get(("entity", entity))
        for name, spec in (raw.get("fields") or {}).items() if raw else ():
            found[name] = spec.get("type", "?") if isinstance(spec, dict) else "?"
        built = self.entities.get(entity)
        for name, field in built.fields.items() if built else ():
            if field.type == "link":
                found[name] = f"link:{field.to}"
            elif field.type == "table":
                found[name] = f"table:{field.entity}"
            else:
                found[name] = field.type
        return found

    def resolve(self, entity: str, path: str) -> tuple[str | None, str | None, str | None]:
        """(type of the field at ``path``, None, None) or (None, what is wrong, hint); links are followed by '.'."""
        parts = path.split(".")
        current = entity
        for index, part in enumerate(parts):
            types = self.field_types(current)
            if part not in types:
                hint = did_you_mean(part, types) or f"fields of {current}: {', '.join(self.declared(current)) or '(none)'}"
                return None, f"'{part}' is not a field of entity '{current}'", hint
            kind = types[part]
            if index == len(parts) - 1:
                return kind, None, None
            if kind.startswith("link:"):
                current = kind.split(":", 1)[1]
                if current not in self.entities:
                    return "?", None, None
            elif kind == "?":
                return "?", None, None
            else:
                return None, f"'{part}' is {describe(kind)}; only link fields can be followed with '.'", None
        return None, "empty path", None

    def check_fields(self, entity: str, data: Located, path: list, fields: Any, paths: bool = False, stored: bool = False) -> None:
        """Every name in a list of field references exists on ``entity``."""
        if entity not in self.entities or not isinstance(fields, list):
            return
        for index, name in enumerate(fields):
            self.check_field_ref(entity, data, [*path, index], name, paths, stored)

    def check_field_ref(self, entity: str, data: Located, path: list, name: str, paths: bool = False, stored: bool = False) -> str | None:
        if "." in name and not paths:
            self.add("FW-E211", f"'{name}' is a path; only a field of {entity} itself can be named here", data, path, did_you_mean(name.split(".")[0], self.field_types(entity)))
            return None
        kind, error, hint = self.resolve(entity, name)
        if error:
            self.add("FW-E211", error, data, path, hint)
            return None
        if stored and kind and kind.startswith("table:"):
            self.add("FW-E220", f"'{name}' is {describe(kind)} (child rows), not a column", data, path)
        return kind

    def declared(self, entity: str) -> list[str]:
        return [n for n in self.field_types(entity) if n not in SYSTEM_FIELD_TYPES]

    def check_entity_ref(self, name: Any, data: Located, path: list, what: str = "entity") -> bool:
        if not isinstance(name, str):
            return False
        if name in self.entities:
            return True
        self.add("FW-E210", f"{what} '{name}' does not exist", data, path, did_you_mean(name, self.entities) or f"known entities: {', '.join(sorted(self.entities))}")
        return False

    def check_role_ref(self, name: Any, data: Located, path: list) -> None:
        if isinstance(name, str) and name not in self.roles:
            self.add("FW-E213", f"role '{name}' does not exist", data, path, did_you_mean(name, self.roles) or f"known roles: {', '.join(sorted(self.roles))}")

    def check_hook(self, name: Any, data: Located, path: list) -> None:
        if isinstance(name, str) and name not in self.hooks:
            hint = did_you_mean(name, self.hooks)
            self.add(
                "FW-E214",
                f"plugin hook '{name}' is not registered",
                data,
                path,
                hint or "register it with @hook('" + name + "') in a module of the project's plugin folders",
            )

    def check_expression(
        self,
        text: Any,
        entity: str,
        data: Located,
        path: list,
        expect: str | None = None,
        variables: Mapping[str, str] | None = None,
        aggregate: bool = False,
    ) -> list[Problem]:
        if not isinstance(text, str) or entity not in self.entities:
            return []
        scope = FieldScope(self.entities, entity, variables, aggregate)
        found = expression_problems(text, scope, place_at(data, path), dotted(path), expect)
        self.problems.extend(found)
        return found

    # entity ---------------------------------------------------------------------------------------

    def check_entity(self, data: Located) -> None:
        name = data["name"]
        entity = self.entities.get(name)
        if entity is None:
            return
        fields = data.get("fields") or {}
        retyped = set()
        if name in BUILTIN_ENTITIES:
            for field_name, kind in builtin_fields()[name].items():
                built = entity.fields.get(field_name)
                if built is None or built.type != kind:
                    retyped.add(field_name)
                    self.add("FW-E236", f"built-in field '{field_name}' of {name} must stay {describe(kind)}", data, ["fields", field_name] if field_name in fields else ["name"], None, True)
        for field_name, spec in fields.items():
            path = ["fields", field_name]
            if field_name in retyped:
                continue
            if self.check_name("field", field_name, data, path, identifier=True, at_key=True):
                if field_name in SYSTEM_FIELDS or field_name in CHILD_FIELDS:
                    self.add("FW-E202", f"field name '{field_name}' is reserved: Formwork adds this column itself", data, path, "choose another name", True)
                elif field_name == STATUS_FIELD and entity.has_status:
                    self.add("FW-E202", "field name 'status' is reserved: a workflow or approval gives this entity its status", data, path, "remove the field or rename it", True)
            if isinstance(spec, Located):
                self.check_field(entity, field_name, spec, data, path)
        if "title_field" in data:
            self.check_field_ref(name, data, ["title_field"], data["title_field"], stored=True)
        for key in ("indexes", "unique"):
            for index, group in enumerate(data.get(key) or ()):
                self.check_fields(name, data, [key, index], group, stored=True)
        number = data.get("number")
        if isinstance(number, Located):
            if "field" in number:
                kind = self.check_field_ref(name, data, ["number", "field"], number["field"])
                if kind and kind not in ("string", "?"):
                    self.add("FW-E220", f"number field '{number['field']}' is {describe(kind)}; a document number needs a string field", data, ["number", "field"])
            if "pattern" in number:
                self.check_number_pattern(number["pattern"], data, ["number", "pattern"])
        for point, hook in (data.get("hooks") or {}).items():
            self.check_hook(hook, data, ["hooks", point])
        for action, spec in (data.get("actions") or {}).items():
            if self.check_name("action", action, data, ["actions", action], at_key=True) and action in STANDARD_ACTIONS:
                self.add("FW-E202", f"action name '{action}' is a standard action", data, ["actions", action], "give the custom action its own name", True)
            self.check_hook(spec.get("hook"), data, ["actions", action, "hook"])
        for index, old in enumerate(entity.renamed_from):
            where = ["renamed_from", index] if isinstance(data.get("renamed_from"), list) else ["renamed_from"]
            if self.check_name("old entity", old, data, where) and old in self.entities:
                self.add("FW-E235", f"renamed_from '{old}' names an entity that still exists", data, where, f"remove renamed_from, or remove or rename entity '{old}'")

    def check_field(self, entity: Entity, name: str, spec: Located, data: Located, path: list) -> None:
        kind = spec.get("type")
        if kind is None:
            return
        not_for = {
            "to": ("link",),
            "entity": ("table",),
            "options": ("choice",),
            "digits": ("decimal",),
            "max_length": STRINGISH,
            "min": (*NUMERIC, "date", "datetime"),
            "max": (*NUMERIC, "date", "datetime"),
        }
        for key, types in not_for.items():
            if key in spec and kind not in types:
                self.add("FW-E230", f"'{key}' does not apply to {describe(kind)}", data, [*path, key], f"only for: {', '.join(types)}", True)
        if kind == "link":
            if "to" not in spec:
                self.add("FW-E231", "a link field needs 'to': the entity it links to", data, path, None, True)
            else:
                self.check_entity_ref(spec["to"], data, [*path, "to"])
        if kind == "table":
            if "entity" not in spec:
                self.add("FW-E231", "a table field needs 'entity': the entity of its rows", data, path, None, True)
            elif self.check_entity_ref(spec["entity"], data, [*path, "entity"]):
                child = spec["entity"]
                if child == entity.name or child in BUILTIN_ENTITIES:
                    self.add("FW-E216", f"'{child}' cannot be the row entity of a table field of {entity.name}", data, [*path, "entity"], "declare a separate entity for the rows")
            for key in ("unique", "index", "default", "compute", "required_if"):
                if key in spec:
                    self.add("FW-E230", f"'{key}' does not apply to a table field", data, [*path, key], None, True)
        if kind == "choice":
            options = spec.get("options")
            if not options:
                self.add("FW-E221", "a choice field needs 'options'", data, path, "e.g. options: [low, medium, high]", True)
            else:
                values = [str(o.get("value")) if isinstance(o, dict) else str(o) for o in options]
                for index, value in enumerate(values):
                    if value in values[:index]:
                        self.add("FW-E221", f"option '{value}' appears twice", data, [*path, "options", index])
        if kind == "decimal" and isinstance(spec.get("digits"), list) and len(spec["digits"]) == 2:
            precision, scale = spec["digits"]
            if not 1 <= precision <= 38 or not 0 <= scale <= precision:
                self.add("FW-E222", f"digits [{precision}, {scale}] are not sane: precision must be 1..38 and scale 0..precision", data, [*path, "digits"], "e.g. digits: [12, 2] for amounts up to 9,999,999,999.99")
        self.check_bounds(kind, spec, data, path)
        if "default" in spec:
            self.check_default(entity, kind, spec, data, path)
        if entity.name in self.entities:
            for key, expect in (("required_if", "boolean"), ("check", "boolean"), ("compute", None)):
                if key in spec:
                    self.check_expression(spec[key], entity.name, data, [*path, key], expect)
        self.check_hook(spec.get("compute_hook"), data, [*path, "compute_hook"])
        for index, hook in enumerate(spec.get("validators") or ()):
            self.check_hook(hook, data, [*path, "validators", index])
        if "compute" in spec and "compute_hook" in spec:
            self.add("FW-E230", "a field is computed either by 'compute' or by 'compute_hook', not both", data, [*path, "compute_hook"], None, True)
        old = spec.get("renamed_from")
        for index, old_name in enumerate([old] if isinstance(old, str) else old or ()):
            where = [*path, "renamed_from"] if isinstance(old, str) else [*path, "renamed_from", index]
            if self.check_name("old field", old_name, data, where) and old_name in entity.fields:
                self.add("FW-E235", f"renamed_from '{old_name}' names a field of {entity.name} that still exists", data, where, "a rename moves the data of the old column into the new one; remove one of the two")

    def check_bounds(self, kind: str, spec: Located, data: Located, path: list) -> None:
        bounds = {}
        for key in ("min", "max"):
            if key not in spec:
                continue
            value = spec[key]
            if kind in NUMERIC and not isinstance(value, int | float):
                self.add("FW-E225", f"'{key}' of {describe(kind)} must be a number, not {value!r}", data, [*path, key])
            elif kind == "date" and not (isinstance(value, str) and _DATE.match(value)):
                self.add("FW-E225", f"'{key}' of a date field must be a date like 2024-01-31, not {value!r}", data, [*path, key])
            elif kind == "datetime" and not (isinstance(value, str) and (_DATETIME.match(value) or _DATE.match(value))):
                self.add("FW-E225", f"'{key}' of a datetime field must be a date-time like 2024-01-31T09:00, not {value!r}", data, [*path, key])
            else:
                bounds[key] = value
        low, high = bounds.get("min"), bounds.get("max")
        comparable = (isinstance(low, int | float) and isinstance(high, int | float)) or (isinstance(low, str) and isinstance(high, str))
        if comparable and low > high:
            self.add("FW-E223", f"min {low} is greater than max {high}", data, [*path, "min"], "swap them")

    def check_default(self, entity: Entity, kind: str, spec: Located, data: Located, path: list) -> None:
        value = spec["default"]
        where = [*path, "default"]
        if isinstance(value, str) and value[:1] in ("=", "$"):
            text = value[1:].strip() if value.startswith("=") else value
            self.check_expression(text, entity.name, data, where)
            return
        ok = {
            "string": isinstance(value, str),
            "text": isinstance(value, str),
            "email": isinstance(value, str) and "@" in value,
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "decimal": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "date": isinstance(value, str) and bool(_DATE.match(value)),
            "datetime": isinstance(value, str) and bool(_DATETIME.match(value) or _DATE.match(value)),
            "json": True,
            "choice": True,
            "link": isinstance(value, int) and not isinstance(value, bool),
            "file": False,
            "table": True,
        }.get(kind, True)
        if not ok:
            self.add("FW-E225", f"default {value!r} does not fit {describe(kind)}", data, where, "an expression default starts with '=' (e.g. '=today()') or '$' (e.g. '$user.department')")
            return
        if kind == "choice":
            values = [str(o.get("value")) if isinstance(o, dict) else str(o) for o in spec.get("options") or ()]
            if values and str(value) not in values:
                self.add("FW-E221", f"default '{value}' is not one of the options: {', '.join(values)}", data, where, did_you_mean(str(value), values))
        if kind in NUMERIC:
            if isinstance(spec.get("min"), int | float) and value < spec["min"] or isinstance(spec.get("max"), int | float) and value > spec["max"]:
                self.add("FW-E223", f"default {value} is outside min/max", data, where)
        if kind in STRINGISH and isinstance(spec.get("max_length"), int) and len(value) > spec["max_length"]:
            self.add("FW-E223", f"default is longer than max_length {spec['max_length']}", data, where)

    def check_number_pattern(self, pattern: str, data: Located, path: list) -> None:
        tokens = _NUMBER_TOKEN.findall(pattern)
        stray = _NUMBER_TOKEN.sub("", pattern)
        bad = [t for t in tokens if t not in ("YYYY", "YY", "MM", "DD") and not re.fullmatch(r"#+", t)]
        if bad or "{" in stray or "}" in stray:
            self.add(
                "FW-E226",
                f"number pattern '{pattern}' has an unknown token {'{' + bad[0] + '}' if bad else '(unbalanced brace)'}",
                data,
                path,
                "tokens: {YYYY} {YY} {MM} {DD} and {#####} for the zero-padded sequence",
            )
        elif sum(1 for t in tokens if t.startswith("#")) != 1:
            self.add("FW-E226", f"number pattern '{pattern}' needs exactly one sequence token such as {{#####}}", data, path, "e.g. PR-{YYYY}-{#####}")

    # form -----------------------------------------------------------------------------------------

    def check_form(self, data: Located) -> None:
        entity = data.get("entity", data["name"])
        path = ["entity"] if "entity" in data else ["name"]
        hint_missing = None if "entity" in data else "a form without 'entity' is for the entity of the same name"
        if entity not in self.entities:
            self.add("FW-E210", f"entity '{entity}' does not exist", data, path, did_you_mean(entity, self.entities) or hint_missing)
            return
        for index, section in enumerate(data.get("layout") or ()):
            self.check_fields(entity, data, ["layout", index, "fields"], section.get("fields"))
            if "visible_if" in section:
                self.check_expression(section["visible_if"], entity, data, ["layout", index, "visible_if"], "boolean")
        listing = data.get("list") or {}
        for key in ("columns", "filters", "search"):
            self.check_fields(entity, data, ["list", key], listing.get(key), paths=key == "columns", stored=True)
        for index, item in enumerate(listing.get("search") or ()):
            kind = self.field_types(entity).get(item)
            if kind and kind not in (*STRINGISH, "choice", "?"):
                self.add("FW-E220", f"search field '{item}' is {describe(kind)}; search works on text fields", data, ["list", "search", index])
        for index, item in enumerate(listing.get("sort") or ()):
            self.check_field_ref(entity, data, ["list", "sort", index], item.lstrip("-+"), stored=True)

    # workflow -------------------------------------------------------------------------------------

    def check_workflow(self, data: Located) -> None:
        entity = data.get("entity")
        known_entity = self.check_entity_ref(entity, data, ["entity"])
        states = [s.get("name") for s in data.get("states") or ()]
        for index, state in enumerate(states):
            self.check_name("state", state, data, ["states", index, "name"])
            if known_entity:
                self.check_fields(entity, data, ["states", index, "editable"], data["states"][index].get("editable"))
                self.check_editable(entity, data, ["states", index, "editable"], data["states"][index].get("editable"), (), f"state '{state}'")

        def known_state(name: Any, path: list) -> bool:
            if name in states:
                return True
            self.add("FW-E212", f"state '{name}' is not one of the states: {', '.join(map(str, states))}", data, path, did_you_mean(str(name), [str(s) for s in states]))
            return False

        initial = data.get("initial", states[0] if states else None)
        if "initial" in data:
            known_state(initial, ["initial"])
        edges: dict[str, set[str]] = {s: set() for s in states}
        for index, transition in enumerate(data.get("transitions") or ()):
            path = ["transitions", index]
            self.check_name("transition", transition.get("name"), data, [*path, "name"])
            sources = transition.get("from")
            sources = [sources] if isinstance(sources, str) else sources or []
            for position, source in enumerate(sources):
                where = [*path, "from"] if isinstance(transition.get("from"), str) else [*path, "from", position]
                if known_state(source, where) and transition.get("to") in states:
                    edges[source].add(transition["to"])
            if "to" in transition:
                known_state(transition["to"], [*path, "to"])
            for position, role in enumerate(transition.get("roles") or ()):
                self.check_role_ref(role, data, [*path, "roles", position])
            self.check_hook(transition.get("hook"), data, [*path, "hook"])
            if known_entity and "when" in transition:
                self.check_expression(transition["when"], entity, data, [*path, "when"], "boolean")
        complete = all(all(k in t for k in ("from", "to")) for t in data.get("transitions") or ())
        # With a transition broken (reported by the schema) the graph is incomplete: no knock-on errors.
        if initial not in states or not complete:
            return
        self.check_state_graph(data, states, initial, edges)

    def check_state_graph(self, data: Located, states: list, initial: str, edges: dict[str, set[str]]) -> None:
        """Every state is reachable from the initial one, and every non-final state can reach a final one."""
        reachable = _reach(initial, edges)
        for index, state in enumerate(states):
            if state not in reachable:
                self.add("FW-E218", f"state '{state}' cannot be reached from the initial state '{initial}'", data, ["states", index, "name"], "add a transition into it, or remove it")
        marked = {s.get("name") for s in data.get("states") or () if s.get("final")}
        finals = marked or {s for s in states if not edges.get(s)}
        for index, state in enumerate(states):
            if state in finals or state not in reachable:
                continue
            if not (_reach(state, edges) & finals):
                if not edges.get(state):
                    message = f"state '{state}' is a dead end: no transition leaves it and it is not final"
                    hint = "add a transition out of it, or mark it 'final: true'"
                else:
                    message = f"state '{state}' is a dead end: no final state can be reached from it"
                    hint = f"final states: {', '.join(sorted(finals)) or '(none)'}"
                self.add("FW-E219", message, data, ["states", index, "name"], hint)

    # approval -------------------------------------------------------------------------------------

    def check_approval(self, data: Located) -> None:
        entity = data.get("entity")
        known = self.check_entity_ref(entity, data, ["entity"])
        for index, step in enumerate(data.get("steps") or ()):
            path = ["steps", index]
            self.check_name("step", step.get("name"), data, [*path, "name"])
            if "pass_ratio" in step and step.get("mode", "any") != "all":
                self.add("FW-E227", f"'pass_ratio' only applies to mode 'all', and this step's mode is '{step.get('mode', 'any')}'", data, [*path, "pass_ratio"], "add 'mode: all' or remove pass_ratio", True)
            for position, rule in enumerate(step.get("approvers") or ()):
                self.check_rule(rule, entity if known else None, data, [*path, "approvers", position])
            if known:
                self.check_fields(entity, data, [*path, "editable"], step.get("editable"))
                self.check_fields(entity, data, [*path, "hidden"], step.get("hidden"))
                self.check_editable(entity, data, [*path, "editable"], step.get("editable"), step.get("hidden") or (), f"step '{step.get('name')}'")
                if "when" in step and not self.check_expression(step["when"], entity, data, [*path, "when"], "boolean") and _always_false(step["when"]):
                    self.add(
                        "FW-E238",
                        f"step '{step.get('name')}' can never be reached: its condition '{step['when']}' is always false",
                        data,
                        [*path, "when"],
                        "fix the condition, or remove the step",
                    )
        for position, rule in enumerate(data.get("cc") or ()):
            self.check_rule(rule, entity if known else None, data, ["cc", position])
        escalate = data.get("escalate")
        if isinstance(escalate, Located) and isinstance(escalate.get("to"), Located):
            self.check_rule(escalate["to"], entity if known else None, data, ["escalate", "to"], escalation=True)
        timeout = data.get("timeout")
        if isinstance(timeout, Located) and timeout.get("action") == "escalate" and not escalate:
            self.add("FW-E233", "timeout action 'escalate' needs an 'escalate' rule saying to whom", data, ["timeout", "action"], "add escalate: {after: 72h, to: {manager_of: approver}}")
        self.check_timers(data)

    def check_editable(self, entity: str, data: Located, path: list, editable: Any, hidden: Any, where: str) -> None:
        """Every ``editable`` field of a step or state is one a person can change there."""
        if not isinstance(editable, list) or entity not in self.entities:
            return
        fields = self.entities[entity].fields
        for index, name in enumerate(editable):
            fld = fields.get(name)
            if name in SYSTEM_FIELD_TYPES or name == STATUS_FIELD:
                reason, hint = "is set by the system", "remove it from 'editable'"
            elif fld is not None and (fld.compute is not None or fld.compute_hook is not None):
                reason, hint = "is computed", "list the fields it is computed from instead"
            elif fld is not None and fld.read_only:
                reason, hint = "is read_only", "remove it from 'editable', or drop read_only from the field"
            elif isinstance(hidden, list | tuple) and name in hidden:
                reason, hint = "is also hidden", "a field the approvers cannot see cannot be edited by them: keep it in one of the two lists"
            else:
                continue
            self.add("FW-E239", f"'{name}' is editable at {where} but nobody can change it there: it {reason}", data, [*path, index], hint)

    def check_timers(self, data: Located) -> None:
        """A reminder or an escalation due no earlier than a timeout that decides the task never happens."""
        timeout = data.get("timeout")
        if not isinstance(timeout, Located) or timeout.get("action") not in ("approve", "reject"):
            return
        decided = duration(timeout.get("after"))
        if decided is None:
            return
        for key in ("remind", "escalate"):
            timer = data.get(key)
            after = duration(timer.get("after")) if isinstance(timer, Located) else None
            if after is not None and after.seconds >= decided.seconds:
                self.add(
                    "FW-E240",
                    f"{key} after {after.text} never happens: the timeout {timeout['action']}s the task after {decided.text}",
                    data,
                    [key, "after"],
                    f"make {key}.after shorter than timeout.after, or remove '{key}'",
                )

    def check_rule(self, rule: Located, entity: str | None, data: Located, path: list, escalation: bool = False) -> None:
        kinds = [k for k in RULE_KINDS if k in rule]
        if len(kinds) != 1:
            self.add(
                "FW-E109",
                f"an approver rule names exactly one of: {', '.join(RULE_KINDS)}" + (f" (this one names {', '.join(kinds)})" if kinds else ""),
                data,
                path,
                "e.g. {role: finance} or {manager_of: created_by}",
            )
            return
        kind = kinds[0]
        value = rule[kind]
        where = [*path, kind]
        if "of" in rule and kind != "manager_chain":
            self.add("FW-E109", "'of' only applies to manager_chain", data, [*path, "of"], None, True)
        if kind == "role":
            self.check_role_ref(value, data, where)
        elif kind == "plugin":
            self.check_hook(value, data, where)
        elif kind == "field" and entity:
            self.check_user_field(entity, value, data, where, allow=())
        elif kind == "manager_of" and entity:
            self.check_user_field(entity, value, data, where, allow=("approver",) if escalation else ())
        elif kind == "manager_chain":
            if entity:
                self.check_user_field(entity, rule.get("of", "created_by"), data, [*path, "of"] if "of" in rule else where, allow=())
            if "until_role" in value:
                self.check_role_ref(value["until_role"], data, [*where, "until_role"])
            if "levels" in value and "until_role" in value:
                self.add("FW-E109", "manager_chain takes 'levels' or 'until_role', not both", data, where)
        elif kind == "department_head" and entity:
            kind_of = self.field_types(entity).get(value)
            if kind_of is not None and kind_of not in ("link:department", "?"):
                self.add("FW-E220", f"department_head field '{value}' is {describe(kind_of)}; it must link to department", data, where)

    def check_user_field(self, entity: str, name: Any, data: Located, path: list, allow: tuple[str, ...]) -> None:
        if name in allow:
            return
        types = self.field_types(entity)
        kind = types.get(name)
        if kind is None:
            users = [n for n, k in types.items() if k == "link:user"]
            self.add("FW-E211", f"'{name}' is not a field of entity '{entity}'", data, path, did_you_mean(str(name), users) or f"user fields: {', '.join([*users, *allow])}")
        elif kind not in ("link:user", "?"):
            self.add("FW-E220", f"'{name}' is {describe(kind)}; it must link to user", data, path)

    # role -----------------------------------------------------------------------------------------

    def check_role(self, data: Located) -> None:
        for index, parent in enumerate(data.get("inherits") or ()):
            self.check_role_ref(parent, data, ["inherits", index])
        self.check_role_cycle(data)
        for entity, grant in (data.get("grants") or {}).items():
            path = ["grants", entity]
            if not self.check_entity_ref(entity, data, path):
                continue
            custom = tuple(self.entities[entity].actions)
            allowed = (*STANDARD_ACTIONS, *custom)
            for index, action in enumerate(grant.get("actions") or ()):
                if action not in allowed:
                    self.add("FW-E215", f"action '{action}' does not exist on {entity}", data, [*path, "actions", index], did_you_mean(action, allowed) or f"actions: {', '.join(allowed)}")
            self.check_fields(entity, data, [*path, "hidden"], grant.get("hidden"))
            self.check_fields(entity, data, [*path, "read_only"], grant.get("read_only"))
            rows = grant.get("rows")
            if isinstance(rows, str) and rows not in ROW_SCOPES:
                self.check_expression(rows, entity, data, [*path, "rows"], "boolean")

    def check_role_cycle(self, data: Located) -> None:
        """Report a cycle once, at the role whose name sorts first in it."""
        start = data["name"]
        stack = [(start, [start])]
        seen = set()
        while stack:
            role, trail = stack.pop()
            raw = self.objects.get(("role", role))
            for parent in (raw.get("inherits") or ()) if raw else ():
                if parent == start:
                    cycle = [*trail, start]
                    if start == min(cycle):
                        self.add("FW-E217", f"roles inherit from each other in a cycle: {' -> '.join(cycle)}", data, ["inherits"], "remove one of the 'inherits' entries")
                    return
                if parent not in seen:
                    seen.add(parent)
                    stack.append((parent, [*trail, parent]))

    # report ---------------------------------------------------------------------------------------

    def check_report(self, data: Located) -> None:
        source = data.get("source")
        known = self.check_entity_ref(source, data, ["source"], "source entity")
        for index, role in enumerate(data.get("roles") or ()):
            self.check_role_ref(role, data, ["roles", index])
        variables = {}
        for name, spec in (data.get("params") or {}).items():
            self.check_name("parameter", name, data, ["params", name], at_key=True)
            kind = spec.get("type")
            if kind == "link":
                if "to" not in spec:
                    self.add("FW-E231", "a link parameter needs 'to'", data, ["params", name], None, True)
                elif self.check_entity_ref(spec["to"], data, ["params", name, "to"]):
                    variables[name] = f"link:{spec['to']}"
            elif kind in PARAM_VARIABLE_TYPES:
                variables[name] = PARAM_VARIABLE_TYPES[kind]
            for key, only in (("to", "link"), ("options", "choice")):
                if key in spec and kind != only:
                    self.add("FW-E230", f"'{key}' does not apply to {'an' if kind[:1] in 'aeiou' else 'a'} {kind} parameter", data, ["params", name, key], f"only for: {only}", True)
            if kind == "choice" and not spec.get("options"):
                self.add("FW-E221", "a choice parameter needs 'options'", data, ["params", name], None, True)
            if kind == "daterange" and isinstance(spec.get("default"), str) and spec["default"] not in DATERANGE_PRESETS:
                self.add("FW-E221", f"daterange default '{spec['default']}' is not a known range", data, ["params", name, "default"], did_you_mean(spec["default"], DATERANGE_PRESETS) or f"one of: {', '.join(DATERANGE_PRESETS)}")
        if not known:
            return
        if "filter" in data:
            self.check_expression(data["filter"], source, data, ["filter"], "boolean", variables)
        group_keys = []
        for index, item in enumerate(data.get("group_by") or ()):
            group_keys.append(item)
            if _PATH.match(item):
                self.check_field_ref(source, data, ["group_by", index], item, paths=True, stored=True)
            else:
                self.check_expression(item, source, data, ["group_by", index], None, variables)
        measures = data.get("measures") or {}
        for name, text in measures.items():
            self.check_name("measure", name, data, ["measures", name], at_key=True)
            self.check_expression(text, source, data, ["measures", name], None, variables, aggregate=True)
        columns = data.get("columns") or []
        self.check_fields(source, data, ["columns"], columns, paths=True, stored=True)
        if columns and group_keys:
            self.add("FW-E229", "'columns' lists rows of an ungrouped report; with 'group_by' the result has the group keys and measures", data, ["columns"], "remove 'columns' or 'group_by'", True)
        if not columns and not measures:
            self.add("FW-E229", "a report needs 'measures' (with or without group_by) or 'columns' (a plain listing)", data, ["source"], None, True)
        outputs = [*group_keys, *measures, *columns]
        for index, item in enumerate(data.get("sort") or ()):
            key = item[1:] if item[:1] in "+-" else item
            if key not in outputs:
                self.add("FW-E228", f"sort key '{key}' is not a group key, measure or column of this report", data, ["sort", index], did_you_mean(key, outputs) or f"one of: {', '.join(outputs)}")
        chart = data.get("chart")
        if isinstance(chart, Located):
            categories = group_keys or columns
            if "x" in chart and chart["x"] not in categories:
                self.add("FW-E228", f"chart x '{chart['x']}' is not a group key or column of this report", data, ["chart", "x"], did_you_mean(chart["x"], categories) or f"one of: {', '.join(categories)}")
            if "series" in chart and chart["series"] not in group_keys:
                self.add("FW-E228", f"chart series '{chart['series']}' is not a group key of this report", data, ["chart", "series"], did_you_mean(chart["series"], group_keys))
            y = chart.get("y")
            values = [*measures, *columns]
            for index, item in enumerate([y] if isinstance(y, str) else y or []):
                if item not in values:
                    where = ["chart", "y"] if isinstance(y, str) else ["chart", "y", index]
                    self.add("FW-E228", f"chart y '{item}' is not a measure of this report", data, where, did_you_mean(item, values) or f"measures: {', '.join(measures)}")

    # app ------------------------------------------------------------------------------------------

    def check_app(self, data: Located) -> None:
        known = [*self.entities, *self.reports]
        for group_index, group in enumerate(data.get("menu") or ()):
            for index, item in enumerate(group.get("items") or ()):
                if item not in self.entities and item not in self.reports:
                    self.add("FW-E210", f"menu item '{item}' is neither an entity nor a report", data, ["menu", group_index, "items", index], did_you_mean(item, known))

    # across objects -------------------------------------------------------------------------------

    def check_flows_per_entity(self) -> None:
        first: dict[str, tuple[str, str]] = {}
        for (kind, name), data in sorted(self.objects.items()):
            if kind not in ("workflow", "approval") or not isinstance(data.get("entity"), str):
                continue
            entity = data["entity"]
            if entity in first:
                other_kind, other = first[entity]
                self.add("FW-E234", f"entity '{entity}' already has {other_kind} '{other}'; an entity has one workflow or approval", data, ["entity"], "merge the two, or attach this one to another entity")
            else:
                first[entity] = (kind, name)
            if entity in self.entities and self.entities[entity].is_child:
                self.add("FW-E234", f"entity '{entity}' holds the rows of a table field; rows follow their parent's flow", data, ["entity"])


    def check_children(self) -> None:
        """A child entity holds the rows of exactly one table field."""
        owner: dict[str, str] = {}
        for (kind, name), data in sorted(self.objects.items()):
            if kind != "entity":
                continue
            for field_name, spec in (data.get("fields") or {}).items():
                if not isinstance(spec, Located) or spec.get("type") != "table" or not isinstance(spec.get("entity"), str):
                    continue
                child = spec["entity"]
                if child in owner:
                    self.add("FW-E216", f"entity '{child}' already holds the rows of {owner[child]}; a row entity serves one table field", data, ["fields", field_name, "entity"], f"declare a separate row entity, e.g. '{name}_{field_name}'")
                else:
                    owner[child] = f"{name}.{field_name}"


# Country codes often written where a language code is meant.
_COUNTRY_FOR_LANGUAGE = {"cn": "zh", "tw": "zh", "hk": "zh", "jp": "ja", "kr": "ko", "ua": "uk", "gr": "el", "dk": "da", "se": "sv", "cz": "cs"}


def _locale_hint(locale: str, locales: tuple[str, ...]) -> str | None:
    meant = _COUNTRY_FOR_LANGUAGE.get(locale.lower())
    if meant in locales:
        return f"did you mean '{meant}'? ('{locale}' is a country code; labels use language codes)"
    return did_you_mean(locale, locales)


def describe(kind: str) -> str:
    """'link:user' -> 'a link to user'; 'integer' -> 'an integer field'."""
    if kind.startswith("link:"):
        return f"a link to {kind[5:]}"
    if kind.startswith("table:"):
        return f"a table of {kind[6:]}"
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind} field"


def snake_case(name: str) -> str:
    """A snake_case spelling of ``name`` (``SalesInvoice`` -> ``sales_invoice``), or '' when none fits."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.strip())
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:MAX_NAME].strip("_")
    return text if NAME.match(text) else ""


_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _always_false(text: Any) -> bool:
    """True when a condition is false whatever the record holds (``False``, ``1 > 2``,
    ``amount > 5 and False``): its value follows from its literals alone."""
    if not isinstance(text, str):
        return False
    try:
        root = parse(text).root
    except ExpressionError:
        return False
    known, value = _constant(root)
    return known and not value


def _constant(node: Node) -> tuple[bool, Any]:
    """(True, value) when ``node``'s value follows from literals alone, else (False, None)."""
    if isinstance(node, Literal):
        return True, node.value
    if isinstance(node, Not):
        known, value = _constant(node.operand)
        return known, (not value) if known else None
    if isinstance(node, BoolOp):
        values = [_constant(operand) for operand in node.operands]
        settles = node.op == "or"  # a true operand settles 'or', a false one settles 'and'
        if any(known and bool(value) is settles for known, value in values):
            return True, settles
        if all(known for known, _ in values):
            return True, not settles
        return False, None
    if isinstance(node, Compare):
        (left_known, left), (right_known, right) = _constant(node.left), _constant(node.right)
        if left_known and right_known and left is not None and right is not None:
            try:
                return True, _COMPARE[node.op](left, right)
            except TypeError:
                return False, None
    return False, None


def _reach(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen
