"""CRUD screens: one Flask-Admin model view per entity, backed by RecordService.

No ORM model sits behind these views. A record is the dict RecordService returns,
wrapped in ``RecordRow`` so Flask-Admin can read its values as attributes. Every
write goes through RecordService with channel ``screen``; its refusals come back
as messages on the form's fields.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import abort, flash, g, has_request_context, request
from flask_admin import Admin
from flask_admin.form import SecureForm
from flask_admin.form.rules import RuleSet
from flask_admin.model import BaseModelView
from flask_admin.model.filters import BaseFilter
from markupsafe import Markup, escape
from wtforms.fields.choices import SelectChoice

from formwork.metadata.model import STATUS_FIELD, SYSTEM_FIELDS, App, Entity, Field, label_text
from formwork.records import (
    Actor,
    PermissionDenied,
    PluginFailure,
    RecordInvalid,
    RecordNotFound,
    RecordQuery,
    StaleVersion,
)
from formwork.web.auth import current_actor
from formwork.web.forms import (
    VERSION_FIELD,
    FormParts,
    build_form,
    entity_label,
    field_label,
    submitted_values,
)
from formwork.web.runtime import Runtime

CHANNEL = "screen"
# A link field's drop-down lists at most this many target records.
LINK_OPTION_CAP = 500
FORM_EXPIRED = "This form has expired or was not sent from this site. Reload the page and try again."
DELETED_MESSAGE = "This record was deleted meanwhile."
STALE_MESSAGE = "Someone else saved this record meanwhile. Reload it to see their changes, then edit again."
SYSTEM_LABELS = {
    "id": "ID",
    "created_at": "Created at",
    "created_by": "Created by",
    "updated_at": "Updated at",
    "updated_by": "Updated by",
    "version": "Version",
    STATUS_FIELD: "Status",
}


def screen_actor() -> Actor:
    """Who works on the screens: the logged-in user (``init_auth`` sends anyone else to the
    login page before a screen runs, so a missing login here is refused with 401)."""
    actor = current_actor()
    if actor is None:
        abort(401)
    return actor


class RecordRow:
    """A record dict seen through attributes, as Flask-Admin and WTForms read models."""

    def __init__(self, values: dict[str, Any]):
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def values(self) -> dict[str, Any]:
        return self._values


class TitleLookup:
    """Titles of linked records for one request, fetched in batches through RecordService."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def _cache(self) -> dict[tuple[str, int], str]:
        if "formwork_titles" not in g:
            g.formwork_titles = {}
        return g.formwork_titles

    def title_field(self, entity_name: str) -> str:
        entity = self.runtime.app_model.entity(entity_name)
        if entity.title_field:
            return entity.title_field
        return "username" if entity_name == "user" else "name" if "name" in entity.fields else "id"

    def title_of(self, entity_name: str, record: dict[str, Any]) -> str:
        """The record's title; a user without one shows the username, anything else its id."""
        value = record.get(self.title_field(entity_name))
        if value in (None, "") and entity_name == "user":
            value = record.get("username")
        return f"#{record['id']}" if value in (None, "") else str(value)

    def prefetch(self, entity_name: str, ids: set[int]) -> None:
        """Load the titles of ``ids`` not yet known, in one query."""
        cache = self._cache()
        missing = sorted(i for i in ids if (entity_name, i) not in cache)
        if not missing:
            return
        query = RecordQuery(filters={"id": missing}, limit=len(missing))
        try:
            found = self.runtime.records.list(entity_name, screen_actor(), query)
        except PermissionDenied:
            # the user may not read that entity: its records show by id only
            found = []
            cache.update({(entity_name, record_id): f"#{record_id}" for record_id in missing})
        for record in found:
            cache[(entity_name, record["id"])] = self.title_of(entity_name, record)
        for record_id in missing:
            # outside the user's rows or deleted: the id, no title
            cache.setdefault((entity_name, record_id), f"#{record_id} (missing)")

    def title(self, entity_name: str, record_id: int) -> str:
        self.prefetch(entity_name, {record_id})
        return self._cache()[(entity_name, record_id)]

    def choices(self, entity_name: str) -> list[SelectChoice]:
        """Options (id, title) of up to LINK_OPTION_CAP records of ``entity_name``, by title."""
        query = RecordQuery(sort=(self.title_field(entity_name),), limit=LINK_OPTION_CAP)
        try:
            records = self.runtime.records.list(entity_name, screen_actor(), query)
        except PermissionDenied:
            return []
        cache = self._cache()
        result = []
        for record in records:
            text = self.title_of(entity_name, record)
            cache[(entity_name, record["id"])] = text
            result.append(SelectChoice(str(record["id"]), text))
        return result


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        # Records hold times in UTC; until users have a time zone, say so.
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date | Decimal):
        return str(value)
    return "" if value is None else str(value)


class EqualsFilter(BaseFilter):
    """A list filter "field equals one of its options" (choice, status and boolean fields);
    RecordService applies it in SQL."""

    def __init__(self, field: str, label: str, options: list[tuple[str, str]]):
        super().__init__(label, options)
        self.field = field

    def operation(self) -> str:
        return "equals"

    def validate(self, value: Any) -> bool:
        return any(value == option for option, _text in self.options or ())


class RecordView(BaseModelView):
    """List, create, edit, details and delete screens of one entity."""

    can_view_details = True
    can_set_page_size = True
    # Delete and action forms are built from this class: they carry the CSRF token too.
    form_base_class = SecureForm

    def __init__(self, runtime: Runtime, entity: Entity, category: str | None):
        self.runtime = runtime
        self.entity = entity
        self.locale = runtime.app_model.default_locale
        self.titles = TitleLookup(runtime)
        form = runtime.app_model.form_for(entity.name)
        self.list_view = form.list if form is not None else None
        self.page_size = self.list_view.page_size if self.list_view else 50
        self.page_size_options = tuple(sorted({20, 50, 100, self.page_size}))
        # Child rows belong to their parent record: they are created with it, not alone.
        self.writable = not entity.is_child
        self.column_list = self._default_list_columns()
        self.column_details_list = self._detail_columns()
        self.column_labels = self._labels()
        self.column_descriptions = {}
        self.column_searchable_list = self._search_fields()
        self.column_filters = self._filters_of_list()
        self.column_formatters = {name: self._format_cell for name in self.column_list}
        self.column_formatters_detail = {name: self._format_detail for name in self.column_details_list}
        self._create_parts = self._form_parts(creating=True)
        self._edit_parts = self._form_parts(creating=False)
        self.form_create_rules = self._create_parts.rules()
        self.form_edit_rules = self._edit_parts.rules()
        super().__init__(
            RecordRow,
            name=entity_label(entity, self.locale),
            category=category,
            endpoint=f"records_{entity.name}",
            url=f"/admin/{entity.name}",
        )

    # What the logged-in user may do and see (asked on every request: roles differ per user)

    def _allows(self, action: str) -> bool:
        records = self.runtime.records
        return bool(records.policy.accesses(self.entity.name, screen_actor(), self.runtime.schema.tables[self.entity.name], action))

    def is_accessible(self) -> bool:
        return not has_request_context() or self._allows("read")

    @property
    def can_create(self) -> bool:
        return self.writable and has_request_context() and self._allows("create")

    @can_create.setter
    def can_create(self, value: bool) -> None:
        """Flask-Admin's class default; the roles decide instead."""

    @property
    def can_edit(self) -> bool:
        return self.writable and has_request_context() and self._allows("update")

    @can_edit.setter
    def can_edit(self, value: bool) -> None:
        """Flask-Admin's class default; the roles decide instead."""

    @property
    def can_delete(self) -> bool:
        return self.writable and has_request_context() and self._allows("delete")

    @can_delete.setter
    def can_delete(self, value: bool) -> None:
        """Flask-Admin's class default; the roles decide instead."""

    def _hidden(self) -> frozenset[str]:
        """Fields hidden from the user on some records: never list columns, filters or sort keys."""
        if not has_request_context():
            return frozenset()
        return self.runtime.records.policy.hidden_fields(self.entity.name, screen_actor())

    def _unwritable(self, action: str) -> tuple[frozenset[str], frozenset[str]]:
        """(hidden, read-only) fields of the form for ``action``: what every grant allowing it hides
        or keeps read-only."""
        accesses = self.runtime.records.policy.accesses(self.entity.name, screen_actor(), self.runtime.schema.tables[self.entity.name], action)
        if not accesses:
            return frozenset(), frozenset()
        hidden = frozenset.intersection(*(a.hidden for a in accesses))
        locked = frozenset.intersection(*(a.hidden | a.read_only for a in accesses))
        return hidden, locked - hidden

    @property
    def _list_columns(self) -> list[tuple[str, str]]:
        hidden = self._hidden()
        return [(name, label) for name, label in self._all_list_columns if name not in hidden]

    @_list_columns.setter
    def _list_columns(self, value: list[tuple[str, str]]) -> None:
        self._all_list_columns = value

    @property
    def _details_columns(self) -> list[tuple[str, str]]:
        # a record read in this request shows only the fields the user may see on it
        shown = g.get("formwork_record_fields") if has_request_context() else None
        hidden = self._hidden() if shown is None else frozenset(n for n in self.entity.fields if n not in shown)
        return [(name, label) for name, label in self._all_details_columns if name not in hidden]

    @_details_columns.setter
    def _details_columns(self, value: list[tuple[str, str]]) -> None:
        self._all_details_columns = value

    @property
    def _form_create_rules(self) -> RuleSet:
        hidden = self._unwritable("create")[0] if has_request_context() else frozenset()
        return RuleSet(self, self._create_parts.without(hidden).rules())

    @_form_create_rules.setter
    def _form_create_rules(self, value: RuleSet | None) -> None:
        """Built per request from the form's sections instead."""

    @property
    def _form_edit_rules(self) -> RuleSet:
        hidden = frozenset()
        if has_request_context():
            shown = g.get("formwork_record_fields")
            hidden = self._unwritable("update")[0] if shown is None else frozenset(n for n in self.entity.fields if n not in shown)
        return RuleSet(self, self._edit_parts.without(hidden).rules())

    @_form_edit_rules.setter
    def _form_edit_rules(self, value: RuleSet | None) -> None:
        """Built per request from the form's sections instead."""

    def _show_missing_fields_warning(self, text: str) -> None:
        """Fields hidden from the user are left out of the rules on purpose: no warning."""

    def _lock(self, form: Any, action: str) -> Any:
        """Disable the inputs of fields read-only for the user (they are not submitted)."""
        for name in self._unwritable(action)[1]:
            if name in form:
                form[name].render_kw = {**(form[name].render_kw or {}), "disabled": True}
        return form

    def _submitted(self, form: Any, parts: FormParts, action: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
        """The values of the inputs the user may write (hidden and read-only ones, and those
        the record's flow locks, are left out)."""
        locked = self._unwritable(action)[1] | (self._flow_locked(record) if record is not None else frozenset())
        names = [n for n in parts.editable if n in form and n not in locked]
        return submitted_values(form, names, creating=action == "create")

    def _flow_locked(self, record: dict[str, Any]) -> frozenset[str]:
        """The form's fields the record's flow keeps the user from changing now (under
        review: all but the step's editable ones, and those only for its approvers)."""
        with self.runtime.engine.connect() as conn:
            lock = self.runtime.records.flows.lock(conn, self.entity.name, record, screen_actor())
        if lock is None:
            return frozenset()
        return frozenset(self._edit_parts.editable) - (lock.editable if lock.may_edit else frozenset())

    # Columns and labels

    def _default_list_columns(self) -> list[str]:
        fields = self.entity.fields
        if self.list_view and self.list_view.columns:
            return [c for c in self.list_view.columns if c in fields or c in SYSTEM_LABELS]
        stored = [f.name for f in fields.values() if f.type not in ("table", "json", "text")]
        title = self.entity.title_field
        if title in stored:
            stored.remove(title)
            stored.insert(0, title)
        columns = stored[:6]
        if self.entity.has_status and STATUS_FIELD not in columns:
            columns.append(STATUS_FIELD)
        return columns

    def _detail_columns(self) -> list[str]:
        columns = ["id", *self.entity.fields]
        if self.entity.has_status and STATUS_FIELD not in columns:
            columns.append(STATUS_FIELD)
        columns += [name for name in SYSTEM_FIELDS if name != "id"]
        return columns

    def _labels(self) -> dict[str, str]:
        labels = dict(SYSTEM_LABELS)
        for field in self.entity.fields.values():
            labels[field.name] = field_label(field, self.locale)
        return labels

    def _search_fields(self) -> list[str]:
        if self.list_view and self.list_view.search:
            return list(self.list_view.search)
        title = self.entity.title_field
        if title and title in self.entity.fields and self.entity.fields[title].type in ("string", "text", "email"):
            return [title]
        return []

    def _filters_of_list(self) -> list[EqualsFilter]:
        """Filters for the form's ``list.filters`` that have fixed options."""
        wanted = self.list_view.filters if self.list_view else ()
        filters = []
        for name in wanted:
            field = self.entity.fields.get(name)
            if field is None:
                continue
            label = field_label(field, self.locale)
            if field.type == "choice":
                options = [(o.value, label_text(o.label, self.locale, o.value)) for o in field.options]
                filters.append(EqualsFilter(name, label, options))
            elif field.type == "boolean":
                filters.append(EqualsFilter(name, label, [("true", "Yes"), ("false", "No")]))
        return filters

    def _form_parts(self, creating: bool) -> FormParts:
        return build_form(
            self.runtime.app_model,
            self.entity,
            creating=creating,
            link_choices=self.titles.choices,
            describe=self.describe,
        )

    # Flask-Admin scaffolding

    def get_pk_value(self, model: RecordRow) -> Any:
        return model.values["id"]

    def scaffold_list_columns(self) -> list[str]:
        return self._default_list_columns()

    def scaffold_sortable_columns(self) -> dict[str, str]:
        stored = {f.name for f in self.entity.stored_fields()} | set(SYSTEM_LABELS)
        return {name: name for name in self.column_list if name in stored}

    def init_search(self) -> bool:
        return bool(self.column_searchable_list)

    def search_placeholder(self) -> str | None:
        if not self.column_searchable_list:
            return None
        return ", ".join(self.column_labels.get(n, n) for n in self.column_searchable_list)

    def scaffold_form(self) -> type:
        return self._create_parts.form_class

    def get_edit_form(self) -> type:
        return self._edit_parts.form_class

    def create_form(self, obj: Any = None) -> Any:
        return self._lock(super().create_form(obj), "create")

    def edit_form(self, obj: RecordRow | None = None) -> Any:
        form = self._lock(super().edit_form(obj), "update")
        if obj is not None:
            for name in self._flow_locked(obj.values):
                if name in form:
                    form[name].render_kw = {**(form[name].render_kw or {}), "disabled": True}
            # Only a freshly loaded form takes the stored version; a posted one keeps what
            # the user loaded, so a save that lacks it is refused rather than forced through.
            if request.method == "GET":
                form[VERSION_FIELD].data = obj.values["version"]
            self._keep_current_links(form, obj)
        return form

    def _keep_current_links(self, form: Any, obj: RecordRow) -> None:
        """A linked record beyond the drop-down's cap still shows as the current choice."""
        for name in self._edit_parts.editable:
            field = self.entity.fields[name]
            value = obj.values.get(name)
            if field.type != "link" or value is None or name not in form:
                continue
            choices = list(form[name].choices)
            if all(choice.value != str(value) for choice in choices):
                choices.append(SelectChoice(str(value), self.titles.title(field.to or "", value)))
                form[name].choices = choices

    def validate_form(self, form: Any) -> bool:
        valid = super().validate_form(form)
        if not valid and "csrf_token" in form.errors:
            flash(FORM_EXPIRED, "error")
        return valid

    # Display

    def describe(self, field: Field, value: Any) -> str:
        """A field's value as text for a person: link titles, choice labels, Yes/No."""
        if value is None:
            return ""
        if field.type == "link" and field.to:
            return self.titles.title(field.to, value)
        if field.type == "choice":
            for option in field.options:
                if option.value == value:
                    return label_text(option.label, self.locale, option.value)
        return _plain(value)

    def _describe_column(self, name: str, value: Any) -> str:
        if name in ("created_by", "updated_by"):
            return "" if value is None else self.titles.title("user", value)
        field = self.entity.fields.get(name)
        if field is None:
            return _plain(value)
        return self.describe(field, value)

    def _format_cell(self, view: Any, context: Any, model: RecordRow, name: str) -> str:
        return self._describe_column(name, model.values.get(name))

    def _format_detail(self, view: Any, context: Any, model: RecordRow, name: str) -> Any:
        field = self.entity.fields.get(name)
        if field is not None and field.type == "table":
            return self._child_table(field, model.values.get(name) or [])
        return self._describe_column(name, model.values.get(name))

    def _child_table(self, field: Field, rows: list[dict[str, Any]]) -> Markup:
        """Child rows as a read-only HTML table (every value escaped)."""
        if not rows:
            return Markup("<em>no rows</em>")
        child = self.runtime.app_model.entity(field.entity or "")
        columns = [f for f in child.fields.values() if f.type != "table"]
        links = {}
        for column in columns:
            if column.type == "link" and column.to:
                links.setdefault(column.to, set()).update(r[column.name] for r in rows if r.get(column.name) is not None)
        for target, ids in links.items():
            self.titles.prefetch(target, ids)
        head = "".join(f"<th>{escape(field_label(c, self.locale))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(self.describe(c, row.get(c.name)))}</td>" for c in columns) + "</tr>"
            for row in rows
        )
        return Markup(f'<table class="table table-sm child-rows"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')

    # Reading

    def get_list(
        self,
        page: int | None,
        sort_field: str | None,
        sort_desc: bool,
        search: str | None,
        filters: Any,
        page_size: int | None = None,
    ) -> tuple[int, list[RecordRow]]:
        size = page_size or self.page_size
        if sort_field:
            sort: tuple[str, ...] = (f"-{sort_field}" if sort_desc else sort_field, "id")
        elif self.list_view and self.list_view.sort:
            sort = tuple(self.list_view.sort)
        else:
            sort = ("-id",)
        hidden = self._hidden()
        if any(key.lstrip("-") in hidden for key in sort):
            sort = ("-id",)
        chosen: dict[str, list[str]] = {}
        for index, _name, value in filters or ():
            if self._filters[index].field not in hidden:
                chosen.setdefault(self._filters[index].field, []).append(value)
        query = RecordQuery(
            filters=chosen,
            sort=sort,
            limit=size,
            offset=(page or 0) * size,
            search=search or None,
            search_fields=tuple(n for n in self.column_searchable_list or () if n not in hidden),
        )
        actor = screen_actor()
        count = self.runtime.records.count(self.entity.name, actor, query)
        records = self.runtime.records.list(self.entity.name, actor, query)
        self._prefetch_links(records)
        return count, [RecordRow(r) for r in records]

    def _prefetch_links(self, records: list[dict[str, Any]]) -> None:
        wanted: dict[str, set[int]] = {}
        for name in self.column_list:
            field = self.entity.fields.get(name)
            target = field.to if field is not None and field.type == "link" else "user" if name in ("created_by", "updated_by") else None
            if target:
                wanted.setdefault(target, set()).update(r[name] for r in records if r.get(name) is not None)
        for target, ids in wanted.items():
            self.titles.prefetch(target, ids)

    def get_one(self, id: Any) -> RecordRow | None:
        try:
            record_id = int(id)
        except (TypeError, ValueError):
            return None
        try:
            record = self.runtime.records.get(self.entity.name, record_id, screen_actor())
        except RecordNotFound:
            return None
        g.formwork_record_fields = frozenset(record)
        return RecordRow(record)

    # Writing

    def create_model(self, form: Any) -> RecordRow | bool:
        values = self._submitted(form, self._create_parts, "create")
        try:
            record = self.runtime.records.create(self.entity.name, values, screen_actor(), CHANNEL)
        except RecordInvalid as invalid:
            self._show_errors(form, invalid, "The record was not created")
            return False
        except (PermissionDenied, PluginFailure) as refused:
            flash(f"The record was not created: {refused}", "error")
            return False
        return RecordRow(record)

    def update_model(self, form: Any, model: RecordRow) -> bool:
        values = self._submitted(form, self._edit_parts, "update", model.values)
        # No fallback to the stored version: without the loaded one the service refuses the save.
        version = _version(form[VERSION_FIELD].data)
        try:
            record = self.runtime.records.update(
                self.entity.name, model.values["id"], values, screen_actor(), CHANNEL, version=version
            )
        except StaleVersion:
            flash(STALE_MESSAGE, "error")
            return False
        except RecordNotFound:
            flash(DELETED_MESSAGE, "error")
            return False
        except RecordInvalid as invalid:
            self._show_errors(form, invalid, "The changes were not saved")
            return False
        except (PermissionDenied, PluginFailure) as refused:
            flash(f"The changes were not saved: {refused}", "error")
            return False
        model.values.clear()
        model.values.update(record)
        return True

    def delete_model(self, model: RecordRow) -> bool:
        try:
            self.runtime.records.delete(self.entity.name, model.values["id"], screen_actor(), CHANNEL)
        except RecordNotFound:
            flash(DELETED_MESSAGE, "error")
            return False
        except RecordInvalid as invalid:
            flash("The record was not deleted: " + "; ".join(e.message for e in invalid.errors), "error")
            return False
        except (PermissionDenied, PluginFailure) as refused:
            flash(f"The record was not deleted: {refused}", "error")
            return False
        return True

    def _show_errors(self, form: Any, invalid: RecordInvalid, headline: str) -> None:
        """Put each error on its field; errors of other fields or the whole record go in the message."""
        elsewhere = []
        for error in invalid.errors:
            name = error.field.split(".")[0].split("[")[0]
            if name and name in form and name != VERSION_FIELD:
                form[name].errors = [*form[name].errors, error.message]
            else:
                label = self.column_labels.get(name, name) if name else ""
                elsewhere.append(f"{label}: {error.message}" if label else error.message)
        flash(f"{headline}: " + ("; ".join(elsewhere) if elsewhere else "please correct the marked fields."), "error")


def _version(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def menu_layout(app: App) -> list[tuple[str, list[Entity]]]:
    """The menu: (group label, entities) in order. The app's ``menu`` groups come first,
    with their entities in the order given; entities no group names follow, users and
    departments under Organization, child-row entities under Child rows, the rest under
    Records, each sorted by label."""
    locale = app.default_locale
    groups: dict[str, list[Entity]] = {}
    placed: set[str] = set()
    for group in app.menu:
        label = label_text(group.label, locale, "Menu")
        for name in group.items:
            if name in app.entities and name not in placed:
                groups.setdefault(label, []).append(app.entities[name])
                placed.add(name)
    rest = sorted((e for e in app.entities.values() if e.name not in placed), key=lambda e: entity_label(e, locale).lower())
    for entity in rest:
        label = "Organization" if entity.builtin else "Child rows" if entity.is_child else "Records"
        groups.setdefault(label, []).append(entity)
    return list(groups.items())


def register_screens(admin: Admin, runtime: Runtime, view_class: type[RecordView] = RecordView) -> list[RecordView]:
    """Add a ``view_class`` view for every entity of the app to ``admin``, grouped as in ``menu_layout``."""
    views = []
    for category, entities in menu_layout(runtime.app_model):
        for entity in entities:
            view = view_class(runtime, entity, category)
            admin.add_view(view)
            views.append(view)
    return views
