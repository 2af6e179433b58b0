"""Turn merged, schema-checked metadata into the frozen model objects of ``model.py``.

The input has passed the JSON Schemas, and nodes that failed them were pruned,
so every value present has the right type; required keys may still be missing
when the schema reported them, and builders then skip the broken item.
Defaults live here, in one place, so every later stage sees the same values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from formwork.metadata.builtins import BUILTIN_TABLES
from formwork.metadata.loader import Located
from formwork.metadata.model import (
    APPROVAL_STATUSES,
    BUILTIN_ENTITIES,
    COMMENT_REQUIRED_DEFAULT,
    STATUS_FIELD,
    Approval,
    ApprovalStep,
    ApproverRule,
    Chart,
    ChoiceOption,
    Duration,
    Entity,
    EntityAction,
    Field,
    Form,
    FormSection,
    Grant,
    ListView,
    MenuGroup,
    NumberPattern,
    Report,
    ReportParam,
    Role,
    Transition,
    Workflow,
    label_text,
)

RULE_KINDS = ("role", "user", "field", "manager_of", "manager_chain", "department_head", "plugin")
ROW_SCOPES = ("all", "own", "department", "department_tree")
DECIMAL_DIGITS = (18, 2)
# State names are names, at most 50 characters (see checks.MAX_NAME).
STATE_NAME_LENGTH = 50
_DURATION = re.compile(r"^([1-9][0-9]*)([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_STATUS_LABELS = {
    "draft": {"en": "Draft", "zh": "草稿"},
    "pending": {"en": "Pending", "zh": "审批中"},
    "approved": {"en": "Approved", "zh": "已批准"},
    "rejected": {"en": "Rejected", "zh": "已驳回"},
    "withdrawn": {"en": "Withdrawn", "zh": "已撤回"},
}


def humanise(name: str) -> str:
    """``purchase_request`` -> ``Purchase request``: the label of anything given none."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


class Builder:
    """Builds model objects in one locale context (plain-string labels belong to ``locale``)."""

    def __init__(self, locale: str):
        self.locale = locale

    def label(self, value: Any, name: str = "") -> dict[str, str]:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        if isinstance(value, str):
            return {self.locale: value}
        return {self.locale: humanise(name)} if name else {}

    # entities -------------------------------------------------------------------------------------

    def field(self, name: str, spec: Located) -> Field | None:
        kind = spec.get("type")
        if not isinstance(kind, str):
            return None
        default = spec.get("default")
        is_expression = isinstance(default, str) and default[:1] in ("=", "$")
        if is_expression and default.startswith("="):
            default = default[1:].strip()
        digits = spec.get("digits")
        if kind == "decimal":
            digits = tuple(digits) if digits else DECIMAL_DIGITS
        return Field(
            name=name,
            type=kind,
            label=self.label(spec.get("label"), name),
            required=bool(spec.get("required", False)),
            required_if=spec.get("required_if"),
            unique=bool(spec.get("unique", False)),
            index=bool(spec.get("index", False)),
            default=default,
            default_is_expression=is_expression,
            min=spec.get("min"),
            max=spec.get("max"),
            max_length=spec.get("max_length"),
            digits=digits if kind == "decimal" else None,
            options=tuple(self.option(o) for o in spec.get("options") or ()),
            to=spec.get("to"),
            entity=spec.get("entity"),
            check=spec.get("check"),
            message=label_text(self.label(spec.get("message")), self.locale) if spec.get("message") else None,
            compute=spec.get("compute"),
            compute_hook=spec.get("compute_hook"),
            validators=tuple(spec.get("validators") or ()),
            help=self.label(spec.get("help")),
            read_only=bool(spec.get("read_only", False)) or bool(spec.get("compute") or spec.get("compute_hook")),
            renamed_from=names(spec.get("renamed_from")),
            place=spec.place,
            description=self.label(spec.get("description")),
        )

    def option(self, value: Any) -> ChoiceOption:
        if isinstance(value, dict):
            text = str(value.get("value"))
            return ChoiceOption(text, self.label(value.get("label")) or {self.locale: text})
        return ChoiceOption(str(value), {self.locale: str(value)})

    def status_field(self, states: tuple[str, ...], labels: Mapping[str, dict[str, str]]) -> Field:
        """The implicit ``status`` of an entity with a workflow or approval: starts in the first state."""
        return Field(
            name=STATUS_FIELD,
            type="choice",
            label={"en": "Status", "zh": "状态"},
            required=True,
            index=True,
            default=states[0] if states else None,
            options=tuple(ChoiceOption(s, labels.get(s) or {self.locale: humanise(s)}) for s in states),
            read_only=True,
            # Fixed, not the longest state: adding or dropping a state must never resize the column.
            max_length=STATE_NAME_LENGTH,
        )

    def entity(self, data: Located, status: Field | None, is_child: bool) -> Entity:
        name = data["name"]
        fields: dict[str, Field] = {}
        for field_name, spec in (data.get("fields") or {}).items():
            built = self.field(field_name, spec)
            if built is not None:
                fields[field_name] = built
        if status is not None and STATUS_FIELD not in fields:
            fields[STATUS_FIELD] = status
        number = data.get("number")
        parent = fields.get("parent")
        return Entity(
            name=name,
            table=BUILTIN_TABLES.get(name, name),
            label=self.label(data.get("label"), name),
            fields=fields,
            title_field=data.get("title_field"),
            indexes=tuple(tuple(i) for i in data.get("indexes") or ()),
            unique_together=tuple(tuple(u) for u in data.get("unique") or ()),
            number=NumberPattern(number["field"], number["pattern"]) if number and "field" in number and "pattern" in number else None,
            renamed_from=names(data.get("renamed_from")),
            hooks=dict(data.get("hooks") or {}),
            actions={
                action: EntityAction(action, spec["hook"], self.label(spec.get("label"), action), spec.place)
                for action, spec in (data.get("actions") or {}).items()
                if "hook" in spec
            },
            builtin=name in BUILTIN_ENTITIES,
            is_child=is_child,
            has_status=status is not None,
            tree=parent is not None and parent.type == "link" and parent.to == name,
            place=data.place,
            description=self.label(data.get("description")),
        )

    # forms ----------------------------------------------------------------------------------------

    def form(self, data: Located, entity: Entity | None) -> Form:
        sections = tuple(
            FormSection(
                label=self.label(section.get("section")),
                fields=tuple(section.get("fields") or ()),
                name=section.get("name"),
                columns=section.get("columns", 1),
                visible_if=section.get("visible_if"),
                place=section.place,
            )
            for section in data.get("layout") or ()
        )
        if not sections and entity is not None:
            editable = tuple(f.name for f in entity.fields.values() if f.name != STATUS_FIELD)
            sections = (FormSection(label=dict(entity.label), fields=editable),)
        listing = data.get("list") or {}
        columns = tuple(listing.get("columns") or ())
        if not columns and entity is not None:
            columns = default_columns(entity)
        return Form(
            name=data["name"],
            entity=data.get("entity", data["name"]),
            label=self.label(data["label"]) if "label" in data else dict(entity.label) if entity else self.label(None, data["name"]),
            layout=sections,
            list=ListView(
                columns=columns,
                filters=tuple(listing.get("filters") or ()),
                search=tuple(listing.get("search") or ()),
                sort=tuple(listing.get("sort") or ("-created_at",)),
                page_size=listing.get("page_size", 50),
            ),
            place=data.place,
        )

    # flows ----------------------------------------------------------------------------------------

    def workflow(self, data: Located) -> Workflow:
        states = [s for s in data.get("states") or () if "name" in s]
        names_ = tuple(s["name"] for s in states)
        transitions = tuple(
            Transition(
                name=t["name"],
                from_states=names(t["from"]),
                to=t["to"],
                label=self.label(t.get("label"), t["name"]),
                roles=tuple(t.get("roles") or ()),
                when=t.get("when"),
                comment=t.get("comment", "optional"),
                hook=t.get("hook"),
                place=t.place,
            )
            for t in data.get("transitions") or ()
            if all(k in t for k in ("name", "from", "to"))
        )
        explicit = tuple(s["name"] for s in states if s.get("final"))
        sinks = tuple(n for n in names_ if not any(n in t.from_states for t in transitions))
        return Workflow(
            name=data["name"],
            entity=data.get("entity", ""),
            states=names_,
            initial=data.get("initial", names_[0] if names_ else ""),
            transitions=transitions,
            label=self.label(data.get("label"), data["name"]),
            final_states=explicit or sinks,
            editable={s["name"]: tuple(s["editable"]) for s in states if "editable" in s},
            place=data.place,
        )

    def state_labels(self, data: Located) -> dict[str, dict[str, str]]:
        return {s["name"]: self.label(s.get("label"), s["name"]) for s in data.get("states") or () if "name" in s}

    def rule(self, data: Located) -> ApproverRule | None:
        kinds = [k for k in RULE_KINDS if k in data]
        if len(kinds) != 1:
            return None
        kind = kinds[0]
        if kind == "manager_chain":
            chain = data["manager_chain"]
            return ApproverRule(kind, data.get("of", "created_by"), chain.get("levels"), chain.get("until_role"), data.place)
        return ApproverRule(kind, str(data[kind]), place=data.place)

    def rules(self, items: Any) -> tuple[ApproverRule, ...]:
        return tuple(r for r in (self.rule(item) for item in items or ()) if r is not None)

    def approval(self, data: Located) -> Approval:
        steps = tuple(
            ApprovalStep(
                name=step["name"],
                approvers=self.rules(step.get("approvers")),
                label=self.label(step.get("label"), step["name"]),
                when=step.get("when"),
                mode=step.get("mode", "any"),
                pass_ratio=step.get("pass_ratio"),
                editable=tuple(step.get("editable") or ()),
                hidden=tuple(step.get("hidden") or ()),
                on_no_approver=_no_approver(step.get("on_no_approver")),
                comment_required=tuple(step["comment_required"]) if "comment_required" in step else None,
                place=step.place,
            )
            for step in data.get("steps") or ()
            if "name" in step
        )
        remind = data.get("remind") or {}
        escalate = data.get("escalate") or {}
        timeout = data.get("timeout") or {}
        return Approval(
            name=data["name"],
            entity=data.get("entity", ""),
            steps=steps,
            label=self.label(data.get("label"), data["name"]),
            cc=self.rules(data.get("cc")),
            cc_when=data.get("cc_when", "finish"),
            on_reject=data.get("on_reject", "initiator"),
            on_no_approver=_no_approver(data.get("on_no_approver")) or "admins",
            skip_initiator=data.get("skip_initiator", True),
            skip_repeated=data.get("skip_repeated", True),
            remind_after=duration(remind.get("after")),
            remind_every=duration(remind.get("every")) or duration(remind.get("after")),
            remind_max=remind.get("max"),
            escalate_after=duration(escalate.get("after")),
            escalate_to=self.rule(escalate["to"]) if isinstance(escalate.get("to"), dict) else None,
            timeout_after=duration(timeout.get("after")),
            timeout_action=timeout.get("action"),
            comment_required=tuple(data.get("comment_required", COMMENT_REQUIRED_DEFAULT)),
            place=data.place,
        )

    def approval_status_labels(self) -> dict[str, dict[str, str]]:
        return {s: dict(_STATUS_LABELS[s]) for s in APPROVAL_STATUSES}

    # roles and reports ----------------------------------------------------------------------------

    def role(self, data: Located) -> Role:
        grants = {}
        for entity, grant in (data.get("grants") or {}).items():
            rows = grant.get("rows", "all")
            grants[entity] = Grant(
                entity=entity,
                actions=tuple(grant.get("actions") or ("read",)),
                rows=rows,
                rows_is_expression=rows not in ROW_SCOPES,
                hidden=tuple(grant.get("hidden") or ()),
                read_only=tuple(grant.get("read_only") or ()),
                place=grant.place,
            )
        return Role(
            name=data["name"],
            label=self.label(data.get("label"), data["name"]),
            inherits=tuple(data.get("inherits") or ()),
            grants=grants,
            place=data.place,
        )

    def report(self, data: Located) -> Report:
        chart = data.get("chart")
        params = {
            name: ReportParam(
                name=name,
                type=spec.get("type", "string"),
                label=self.label(spec.get("label"), name),
                default=spec.get("default"),
                options=tuple(str(o) for o in spec.get("options") or ()),
                to=spec.get("to"),
                required=bool(spec.get("required", False)),
            )
            for name, spec in (data.get("params") or {}).items()
        }
        return Report(
            name=data["name"],
            source=data.get("source", ""),
            label=self.label(data.get("title") or data.get("label"), data["name"]),
            params=params,
            filter=data.get("filter"),
            group_by=tuple(data.get("group_by") or ()),
            measures=dict(data.get("measures") or {}),
            columns=tuple(data.get("columns") or ()),
            sort=tuple(data.get("sort") or ()),
            limit=data.get("limit"),
            chart=Chart(chart["type"], chart.get("x"), names(chart.get("y")), chart.get("series")) if chart and "type" in chart else None,
            roles=tuple(data.get("roles") or ()),
            place=data.place,
            description=self.label(data.get("description")),
        )

    def menu(self, data: Located | None) -> tuple[MenuGroup, ...]:
        if data is None:
            return ()
        return tuple(
            MenuGroup(self.label(group.get("label")), tuple(group.get("items") or ()))
            for group in data.get("menu") or ()
        )


def default_columns(entity: Entity) -> tuple[str, ...]:
    """List columns when a form names none: the title field, then up to five short fields."""
    short = [f.name for f in entity.fields.values() if f.is_stored and f.type not in ("text", "json", "file")]
    if entity.title_field in short:
        short.remove(entity.title_field)
        short.insert(0, entity.title_field)
    return tuple(short[:6])


def names(value: Any) -> tuple[str, ...]:
    """A name or a list of names as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def duration(text: Any) -> Duration | None:
    """``30m``, ``24h``, ``2d`` as a Duration; None for anything else."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    return Duration(int(match.group(1)) * _UNIT_SECONDS[match.group(2)], text)


def _no_approver(value: Any) -> str | None:
    if isinstance(value, dict):
        return f"user:{value.get('user')}"
    return value
