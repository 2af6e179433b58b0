"""WTForms forms generated from an entity's fields and its form layout.

The forms only turn posted text into typed values; every rule of the metadata
(required, min, max, checks, hooks) is enforced by RecordService, whose errors
the screens put back on these fields. Required fields are marked so the browser
and the label show it, but the record service stays the judge.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask_admin.form import SecureForm
from flask_admin.form import rules as form_rules
from markupsafe import escape
from wtforms import fields as wtf
from wtforms import validators
from wtforms.fields.choices import SelectChoice

from formwork.metadata.model import STATUS_FIELD, App, Entity, Field, label_text

# The hidden field carrying the version the user loaded, for optimistic locking.
VERSION_FIELD = "fw_version"

Choices = list[SelectChoice]


def prettify(name: str) -> str:
    """``needed_by`` -> ``Needed by``: the label of a field or entity that declares none."""
    return name.replace("_", " ").strip().capitalize()


def field_label(field: Field, locale: str) -> str:
    """The field's label in ``locale`` or a readable form of its name."""
    return label_text(field.label, locale, prettify(field.name))


def entity_label(entity: Entity, locale: str) -> str:
    """The entity's label in ``locale`` or a readable form of its name."""
    return label_text(entity.label, locale, prettify(entity.name))


def is_editable(entity: Entity, field: Field) -> bool:
    """Whether a screen lets the user type the field's value (else it is shown read-only)."""
    if field.type in ("table", "file") or field.read_only or field.compute or field.compute_hook:
        return False
    if entity.number is not None and entity.number.field == field.name:
        return False
    return field.name != STATUS_FIELD


@dataclass(frozen=True)
class FormParts:
    """A generated form class and the field names it edits, grouped into sections."""

    form_class: type[SecureForm]
    editable: tuple[str, ...]
    sections: tuple[tuple[str, tuple[str, ...]], ...]

    def without(self, names: frozenset[str]) -> FormParts:
        """The same form with the fields ``names`` left out of its sections (and so of the page)."""
        if not names:
            return self
        sections = tuple((header, kept) for header, shown in self.sections if (kept := tuple(n for n in shown if n not in names)))
        return FormParts(self.form_class, tuple(n for n in self.editable if n not in names), sections)

    def rules(self) -> list[form_rules.BaseRule]:
        """Flask-Admin form rules: one field set with a header per section, plus the hidden
        fields (Flask-Admin drops every field no rule names)."""
        sections: list[form_rules.BaseRule] = [form_rules.FieldSet(names, header) for header, names in self.sections]
        return [*sections, HiddenFields(("csrf_token", VERSION_FIELD))]


class HiddenFields(form_rules.BaseRule):
    """Keeps hidden fields in a ruled form; the form template renders them itself."""

    def __init__(self, names: tuple[str, ...]):
        super().__init__()
        self.names = names

    @property
    def visible_fields(self) -> list[str]:
        return list(self.names)

    def __call__(self, form: Any, form_opts: Any = None, field_args: Any = None) -> str:
        return ""


def layout_sections(app: App, entity: Entity, locale: str) -> list[tuple[str, list[str]]]:
    """Sections of the entity's form as (header, field names); fields the layout leaves out
    follow in a last section so that no field becomes impossible to fill."""
    form = app.form_for(entity.name)
    sections: list[tuple[str, list[str]]] = []
    placed: set[str] = set()
    if form is not None:
        for section in form.layout:
            names = [n for n in section.fields if n in entity.fields and n not in placed]
            placed.update(names)
            if names:
                sections.append((label_text(section.label, locale, ""), names))
    rest = [n for n in entity.fields if n not in placed]
    if rest:
        sections.append(("" if not sections else "Other", rest))
    return sections


class OptionalInteger:
    """Coerce a select's value to an integer id, the empty option to None."""

    def __call__(self, value: Any) -> int | None:
        if value in (None, ""):
            return None
        return int(value)


class OptionalText:
    """Coerce a select's value to text, the empty option to None."""

    def __call__(self, value: Any) -> str | None:
        if value in (None, ""):
            return None
        return str(value)


class MarkRequired(validators.InputRequired):
    """Marks a field required without judging it here: Flask-Admin's asterisk looks for an
    InputRequired validator and the browser checks the ``required`` flag, while the record
    service stays the one place that refuses an empty required field."""

    def __call__(self, form: Any, field: Any) -> None:
        return None


class JSONField(wtf.TextAreaField):
    """A text area holding a JSON document."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        if self.data is None:
            return ""
        return json.dumps(self.data, ensure_ascii=False, indent=2)

    def process_formdata(self, valuelist: list[str]) -> None:
        text = valuelist[0].strip() if valuelist else ""
        if not text:
            self.data = None
            return
        try:
            self.data = json.loads(text)
        except ValueError as exc:
            self.data = None
            raise ValueError(f"Not valid JSON: {exc}") from exc


class ReadOnlyField(wtf.StringField):
    """Shows a value that the screen may not change; posted text for it is ignored."""

    def __init__(self, *args: Any, describe: Callable[[Any], str] = str, **kwargs: Any):
        kwargs.setdefault("render_kw", {"readonly": True})
        super().__init__(*args, **kwargs)
        self.describe = describe

    def _value(self) -> str:
        return "" if self.data is None else self.describe(self.data)

    def process_formdata(self, valuelist: list[str]) -> None:
        return None


def _description(field: Field, locale: str) -> str:
    # Flask-Admin renders descriptions unescaped; metadata text must not become markup.
    text = label_text(field.help, locale, "")
    return str(escape(text)) if text else ""


def _editable_field(field: Field, locale: str, link_choices: Callable[[str], Choices], creating: bool) -> wtf.Field:
    """The input of one editable field."""
    checks: list[Any] = [MarkRequired()] if field.required and field.type != "boolean" else []
    options: dict[str, Any] = {"label": field_label(field, locale), "description": _description(field, locale)}
    if creating and field.default is not None and not field.default_is_expression:
        options["default"] = field.default
    if field.type not in ("choice", "link", "boolean"):
        checks.append(validators.Optional())
    options["validators"] = checks
    kind = field.type
    if kind == "text":
        return wtf.TextAreaField(**options)
    if kind == "email":
        return wtf.EmailField(**options)
    if kind == "integer":
        return wtf.IntegerField(**options)
    if kind == "decimal":
        places = field.digits[1] if field.digits else None
        return wtf.DecimalField(places=places, **options)
    if kind == "boolean":
        return wtf.BooleanField(**options)
    if kind == "date":
        return wtf.DateField(**options)
    if kind == "datetime":
        # The record service reads a time without a zone as UTC, and hands times out in UTC.
        options["label"] = f"{options['label']} (UTC)"
        return wtf.DateTimeLocalField(format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], **options)
    if kind == "json":
        return JSONField(**options)
    if kind == "choice":
        choices = [SelectChoice("", ""), *(SelectChoice(o.value, label_text(o.label, locale, o.value)) for o in field.options)]
        return wtf.SelectField(choices=choices, coerce=OptionalText(), **options)
    if kind == "link":
        target = field.to or ""
        # Existence of the target is the record service's to check; the list may be capped.
        return wtf.SelectField(
            choices=lambda: [SelectChoice("", ""), *link_choices(target)], coerce=OptionalInteger(), validate_choice=False, **options
        )
    max_length = {"maxlength": field.max_length} if field.max_length else None
    return wtf.StringField(render_kw=max_length, **options)


def build_form(
    app: App,
    entity: Entity,
    *,
    creating: bool,
    link_choices: Callable[[str], Choices],
    describe: Callable[[Field, Any], str],
) -> FormParts:
    """A form class for creating (``creating=True``) or editing records of ``entity``.

    Editable fields get inputs; read-only, computed, numbered and file fields are
    shown read-only on the edit form and left out of the create form. Table
    fields (child rows) are not part of the form. The edit form carries the
    record's version in a hidden field.
    """
    locale = app.default_locale
    attributes: dict[str, Any] = {}
    editable: list[str] = []
    sections: list[tuple[str, tuple[str, ...]]] = []
    for header, names in layout_sections(app, entity, locale):
        shown: list[str] = []
        for name in names:
            field = entity.fields[name]
            if field.type == "table":
                continue
            if is_editable(entity, field):
                attributes[name] = _editable_field(field, locale, link_choices, creating)
                editable.append(name)
                shown.append(name)
            elif not creating:
                attributes[name] = ReadOnlyField(
                    label=field_label(field, locale), describe=lambda value, f=field: describe(f, value)
                )
                shown.append(name)
        if shown:
            sections.append((header, tuple(shown)))
    if not creating:
        attributes[VERSION_FIELD] = wtf.HiddenField()
    form_class = type(f"{entity.name}_{'create' if creating else 'edit'}_form", (SecureForm,), attributes)
    return FormParts(form_class, tuple(editable), tuple(sections))


def submitted_values(form: Any, names: Iterable[str], *, creating: bool) -> dict[str, Any]:
    """The typed values of the editable fields. On create, empty inputs are left out so
    that the entity's defaults (including expression defaults) apply."""
    values: dict[str, Any] = {}
    for name in names:
        field = form[name]
        value = field.data
        if isinstance(value, str) and field.type in ("StringField", "TextAreaField", "EmailField") and not value.strip():
            value = None
        if creating and value is None:
            continue
        values[name] = value
    return values
