"""Which column holds which field: a file's header row matched to an entity's fields.

A header names a field by its name or by its label in any locale of the metadata
("amount", "Amount", "金额"), ignoring case, spaces and underscores. Exports write
labels in the deployment's default locale (or names), so an exported file imports again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from formwork.metadata.model import CHILD_FIELDS, STATUS_FIELD, SYSTEM_FIELDS, App, Entity, Field, label_text
from formwork.problems import did_you_mean

# The column the rejects file adds; an import of a corrected rejects file skips it.
ERRORS_COLUMN = "import errors"


@dataclass(frozen=True)
class HeaderProblem:
    """A header row mistake: ``column`` is the header text as written (None: a missing column)."""

    column: str | None
    field: str | None
    code: str
    message: str


@dataclass(frozen=True)
class Column:
    """Column ``index`` of the file (0-based), headed ``header``, holds ``field``."""

    index: int
    header: str
    field: Field


def normalise(text: str) -> str:
    """A header or label compared loosely: case-folded, underscores as spaces, spaces collapsed."""
    return " ".join(text.replace("_", " ").split()).casefold()


def importable_fields(entity: Entity) -> list[Field]:
    """Fields a file can give: every stored field (child tables are not part of a flat file)."""
    return entity.stored_fields()


def exported_fields(entity: Entity) -> list[Field]:
    """Fields an export writes, in declaration order (the same ones an import reads)."""
    return importable_fields(entity)


def header_of(field: Field, locale: str, style: str) -> str:
    """The export header of ``field``: its label in ``locale`` (``style`` 'labels') or its name."""
    if style == "names":
        return field.name
    return label_text(field.label, locale, field.name.replace("_", " ").capitalize())


def _names(entity: Entity) -> dict[str, list[Field]]:
    """Loose key -> fields it may mean: names first, then labels in every locale."""
    keys: dict[str, list[Field]] = {}
    for fld in importable_fields(entity):
        keys.setdefault(normalise(fld.name), []).append(fld)
    by_name = dict(keys)
    for fld in importable_fields(entity):
        for text in fld.label.values():
            key = normalise(text)
            # a field's name beats another field's label
            if key in by_name:
                continue
            if fld not in keys.setdefault(key, []):
                keys[key].append(fld)
    return keys


def required_columns(app: App, entity: Entity) -> list[Field]:
    """Fields a file must have a column for: required, without a default, not computed,
    not filled by a document number."""
    numbered = entity.number.field if entity.number else None
    return [
        f
        for f in importable_fields(entity)
        if f.required and f.default is None and f.compute is None and f.compute_hook is None and f.name != numbered
    ]


def match_headers(app: App, entity: Entity, headers: list[Any]) -> tuple[list[Column], list[HeaderProblem]]:
    """The columns of a header row, and every problem with it (unknown, repeated or
    ambiguous headers, missing required columns). Empty headers are skipped."""
    keys = _names(entity)
    columns: list[Column] = []
    problems: list[HeaderProblem] = []
    seen: dict[str, str] = {}
    locale = app.default_locale
    suggestions = [f.name for f in importable_fields(entity)] + [label_text(f.label, locale) for f in importable_fields(entity) if f.label]
    for index, raw in enumerate(headers):
        header = "" if raw is None else str(raw).strip()
        if not header or normalise(header) == ERRORS_COLUMN:
            continue
        key = normalise(header)
        found = keys.get(key, [])
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            problems.append(HeaderProblem(header, None, "ambiguous_column", f"column '{header}' could mean several fields ({names}): use the field name"))
            continue
        if not found:
            problems.append(HeaderProblem(header, None, "unknown_column", _unknown_message(app, entity, header, suggestions)))
            continue
        fld = found[0]
        if fld.name in seen:
            problems.append(HeaderProblem(header, fld.name, "repeated_column", f"column '{header}' repeats column '{seen[fld.name]}' (both are {fld.name})"))
            continue
        seen[fld.name] = header
        columns.append(Column(index, header, fld))
    for fld in required_columns(app, entity):
        if fld.name not in seen:
            shown = label_text(fld.label, locale)
            also = f" ('{shown}')" if shown and normalise(shown) != normalise(fld.name) else ""
            problems.append(HeaderProblem(None, fld.name, "missing_column", f"a column for the required field '{fld.name}'{also} is missing"))
    return columns, problems


def _unknown_message(app: App, entity: Entity, header: str, suggestions: list[str]) -> str:
    bare = normalise(header).replace(" ", "_")
    if bare in SYSTEM_FIELDS or bare in CHILD_FIELDS:
        return f"column '{header}' is set by the system and cannot be imported: remove it"
    if bare == STATUS_FIELD and entity.has_status:
        return f"column '{header}': the status is changed only by the workflow's actions: remove the column"
    table = next((f for f in entity.fields.values() if f.type == "table" and normalise(f.name) == normalise(header)), None)
    if table is not None:
        return f"column '{header}' holds child rows ({table.entity}); a file imports one record per row without child rows"
    hint = did_you_mean(header, suggestions)
    suffix = f" ({hint})" if hint else ""
    return f"column '{header}' is not a field of {entity.name}{suffix}"
