"""The compiled application model: plain, frozen data built once from metadata files.

Every later stage (storage, records, security, workflow, reports, web) reads
these objects and never the files. Mappings inside are ordinary dicts that no
stage mutates after ``compile_app`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from formwork.problems import Place

FIELD_TYPES = (
    "string",
    "text",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "choice",
    "link",
    "table",
    "file",
    "email",
    "json",
)

# Columns every entity's table has; metadata may not declare fields with these names.
SYSTEM_FIELDS = ("id", "created_at", "created_by", "updated_at", "updated_by", "version")
# Added when a workflow or approval is attached to the entity.
STATUS_FIELD = "status"
# Columns a child table (an entity used by a `table` field) has on top of the system ones.
CHILD_FIELDS = ("parent_id", "parent_field", "row_order")

BUILTIN_ENTITIES = ("user", "department")

# Types of the system columns, for references to them (list columns, sort, report paths).
SYSTEM_FIELD_TYPES = {
    "id": "integer",
    "created_at": "datetime",
    "created_by": "link:user",
    "updated_at": "datetime",
    "updated_by": "link:user",
    "version": "integer",
}
# The statuses an approval gives its entity; the first is where a new record starts.
APPROVAL_STATUSES = ("draft", "pending", "approved", "rejected", "withdrawn")
# The approval actions that need a comment unless the approval says otherwise: a rejection
# or a return must say why.
COMMENT_REQUIRED_DEFAULT = ("reject", "return")
# The role that always exists; the security stage gives its members every right.
ADMIN_ROLE = "admin"
# Named defaults a report `daterange` parameter may have (reports resolve them to dates).
DATERANGE_PRESETS = (
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "last_7_days",
    "last_30_days",
    "last_90_days",
    "last_365_days",
)


def naming_field(entity: Entity) -> str | None:
    """The field whose value names a record of ``entity`` in files (demo data, import,
    export): a user's username, a department's name, else the title field; None means
    records are named by id only."""
    if entity.builtin and entity.name == "user":
        return "username"
    if entity.builtin and entity.name == "department":
        return "name"
    return entity.title_field


def label_text(label: dict[str, str], locale: str = "en", fallback: str = "") -> str:
    """The label in ``locale``, else English, else any locale, else ``fallback``."""
    if not label:
        return fallback
    return label.get(locale) or label.get("en") or next(iter(label.values()), fallback)


@dataclass(frozen=True)
class ChoiceOption:
    value: str
    label: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Field:
    """One field of an entity. ``type`` is one of FIELD_TYPES."""

    name: str
    type: str
    label: dict[str, str] = field(default_factory=dict)
    required: bool = False
    required_if: str | None = None  # expression
    unique: bool = False
    index: bool = False
    default: Any = None  # a literal, or an expression string when default_is_expression
    default_is_expression: bool = False
    min: Any = None
    max: Any = None
    max_length: int | None = None
    digits: tuple[int, int] | None = None  # (precision, scale) for decimal
    options: tuple[ChoiceOption, ...] = ()  # for choice
    to: str | None = None  # link target entity name
    entity: str | None = None  # child entity of a table field
    check: str | None = None  # expression that must hold
    message: str | None = None  # shown when check fails
    compute: str | None = None  # expression; the field is stored and recomputed on save
    compute_hook: str | None = None  # plugin hook name computing the value
    validators: tuple[str, ...] = ()  # plugin hook names of custom validators
    help: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    renamed_from: tuple[str, ...] = ()
    place: Place | None = None
    description: dict[str, str] = field(default_factory=dict)

    @property
    def is_stored(self) -> bool:
        """True when the field is a column of its entity's table (table fields are child rows)."""
        return self.type != "table"

    @property
    def option_values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)


@dataclass(frozen=True)
class NumberPattern:
    """A document number such as ``PR-{YYYY}-{#####}`` filled into ``field`` on create."""

    field: str
    pattern: str


@dataclass(frozen=True)
class EntityAction:
    """A custom action on a record, run by a plugin hook, exposed as POST .../actions/<name>."""

    name: str
    hook: str
    label: dict[str, str] = field(default_factory=dict)
    place: Place | None = None


@dataclass(frozen=True)
class Entity:
    name: str
    table: str
    label: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Field] = field(default_factory=dict)
    title_field: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()
    unique_together: tuple[tuple[str, ...], ...] = ()
    number: NumberPattern | None = None
    renamed_from: tuple[str, ...] = ()
    hooks: dict[str, str] = field(default_factory=dict)  # hook point -> plugin hook name
    actions: dict[str, EntityAction] = field(default_factory=dict)
    builtin: bool = False
    is_child: bool = False  # used as the row entity of some table field
    has_status: bool = False  # a workflow or approval is attached
    tree: bool = False  # has a `parent` link to itself (department)
    place: Place | None = None
    description: dict[str, str] = field(default_factory=dict)

    def stored_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.is_stored]


@dataclass(frozen=True)
class FormSection:
    label: dict[str, str]
    fields: tuple[str, ...]
    name: str | None = None
    columns: int = 1
    visible_if: str | None = None
    place: Place | None = None


@dataclass(frozen=True)
class ListView:
    columns: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()  # "-field" for descending
    page_size: int = 50


@dataclass(frozen=True)
class Form:
    name: str
    entity: str
    label: dict[str, str] = field(default_factory=dict)
    layout: tuple[FormSection, ...] = ()
    list: ListView = field(default_factory=ListView)
    place: Place | None = None


@dataclass(frozen=True)
class Transition:
    name: str
    from_states: tuple[str, ...]
    to: str
    label: dict[str, str] = field(default_factory=dict)
    roles: tuple[str, ...] = ()
    when: str | None = None  # expression
    comment: str = "optional"  # optional | required | none
    hook: str | None = None
    place: Place | None = None


@dataclass(frozen=True)
class Workflow:
    name: str
    entity: str
    states: tuple[str, ...]
    initial: str
    transitions: tuple[Transition, ...]
    label: dict[str, str] = field(default_factory=dict)
    final_states: tuple[str, ...] = ()
    editable: dict[str, tuple[str, ...]] = field(default_factory=dict)  # state -> fields editable in it
    place: Place | None = None


@dataclass(frozen=True)
class ApproverRule:
    """Who approves a step. ``kind`` is one of: role, user, field, manager_of, manager_chain,
    department_head, plugin. ``value`` is the role/user/field/hook name or the user field
    whose manager is meant; ``levels`` and ``until_role`` refine manager_chain."""

    kind: str
    value: str
    levels: int | None = None
    until_role: str | None = None
    place: Place | None = None


@dataclass(frozen=True)
class ApprovalStep:
    name: str
    approvers: tuple[ApproverRule, ...]
    label: dict[str, str] = field(default_factory=dict)
    when: str | None = None  # expression; the step is skipped when false
    mode: str = "any"  # any | all | sequence
    pass_ratio: float | None = None  # for mode all: share of approvals that passes the step
    editable: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    on_no_approver: str | None = None  # overrides the approval's setting
    comment_required: tuple[str, ...] | None = None  # overrides the approval's list at this step
    place: Place | None = None


@dataclass(frozen=True)
class Duration:
    seconds: int
    text: str


@dataclass(frozen=True)
class Approval:
    name: str
    entity: str
    steps: tuple[ApprovalStep, ...]
    label: dict[str, str] = field(default_factory=dict)
    cc: tuple[ApproverRule, ...] = ()
    cc_when: str = "finish"  # start | finish | both
    on_reject: str = "initiator"  # initiator | previous_step | end
    on_no_approver: str = "admins"  # auto_approve | auto_reject | admins | user:<name>
    skip_initiator: bool = True
    skip_repeated: bool = True
    remind_after: Duration | None = None
    remind_every: Duration | None = None
    remind_max: int | None = None
    escalate_after: Duration | None = None
    escalate_to: ApproverRule | None = None
    timeout_after: Duration | None = None
    timeout_action: str | None = None  # approve | reject | escalate
    comment_required: tuple[str, ...] = COMMENT_REQUIRED_DEFAULT  # actions that need a comment
    place: Place | None = None


@dataclass(frozen=True)
class Grant:
    entity: str
    actions: tuple[str, ...]
    rows: str = "all"  # all | own | department | department_tree | an expression
    rows_is_expression: bool = False
    hidden: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()
    place: Place | None = None


@dataclass(frozen=True)
class Role:
    name: str
    label: dict[str, str] = field(default_factory=dict)
    inherits: tuple[str, ...] = ()
    grants: dict[str, Grant] = field(default_factory=dict)
    place: Place | None = None


@dataclass(frozen=True)
class ReportParam:
    name: str
    type: str  # string | integer | decimal | date | daterange | choice | link | boolean
    label: dict[str, str] = field(default_factory=dict)
    default: Any = None
    options: tuple[str, ...] = ()
    to: str | None = None
    required: bool = False


@dataclass(frozen=True)
class Chart:
    type: str  # bar | line | pie | area | table
    x: str | None = None
    y: tuple[str, ...] = ()
    series: str | None = None


@dataclass(frozen=True)
class Report:
    name: str
    source: str
    label: dict[str, str] = field(default_factory=dict)
    params: dict[str, ReportParam] = field(default_factory=dict)
    filter: str | None = None
    group_by: tuple[str, ...] = ()
    measures: dict[str, str] = field(default_factory=dict)  # name -> aggregate expression
    columns: tuple[str, ...] = ()  # for a plain (ungrouped) listing report
    sort: tuple[str, ...] = ()
    limit: int | None = None
    chart: Chart | None = None
    roles: tuple[str, ...] = ()
    place: Place | None = None
    description: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MenuGroup:
    """One group of the app's menu: a label and entity or report names, in order."""

    label: dict[str, str]
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class App:
    """A whole deployment's compiled metadata."""

    name: str
    label: dict[str, str] = field(default_factory=dict)
    version: str = "0"
    default_locale: str = "en"
    locales: tuple[str, ...] = ("en",)
    entities: dict[str, Entity] = field(default_factory=dict)
    forms: dict[str, Form] = field(default_factory=dict)
    workflows: dict[str, Workflow] = field(default_factory=dict)
    approvals: dict[str, Approval] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    metadata_hash: str = ""
    menu: tuple[MenuGroup, ...] = ()
    description: dict[str, str] = field(default_factory=dict)

    def entity(self, name: str) -> Entity:
        return self.entities[name]

    def form_for(self, entity: str) -> Form | None:
        """The form named like the entity, else the first form on it, else None."""
        if entity in self.forms and self.forms[entity].entity == entity:
            return self.forms[entity]
        return next((f for f in self.forms.values() if f.entity == entity), None)

    def flow_for(self, entity: str) -> Workflow | Approval | None:
        """The workflow or approval attached to the entity, if any."""
        for flow in (*self.approvals.values(), *self.workflows.values()):
            if flow.entity == entity:
                return flow
        return None
