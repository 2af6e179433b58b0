"""What names mean where an expression is used: the entity's fields, links, child tables, $variables.

Field paths resolve against ``formwork.metadata.model.Entity`` objects. A link
field can be followed to the target's fields; a table field leads to the child
entity's rows, whose values only make sense inside an aggregate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from formwork.expressions.errors import ROWS_MISUSE, UNKNOWN_FIELD, ExpressionError
from formwork.problems import did_you_mean

if TYPE_CHECKING:
    from formwork.metadata.model import Entity, Field

# Field types that behave as text in expressions.
_TEXT_TYPES = ("string", "text", "email", "choice", "file")
# Type names a scope's variables may have (besides "link:<entity>" and "list:<type>").
VARIABLE_TYPES = ("string", "integer", "decimal", "boolean", "date", "datetime", "daterange")
BUILTIN_VARIABLES = {"user": "link:user", "today": "date", "now": "datetime"}


@cache
def _system_fields() -> dict[str, Field]:
    """Fields every entity has; imported late because formwork.metadata imports this package."""
    from formwork.metadata.model import STATUS_FIELD, Field

    return {
        f.name: f
        for f in (
            Field("id", "integer"),
            Field("created_at", "datetime"),
            Field("created_by", "link", to="user"),
            Field("updated_at", "datetime"),
            Field("updated_by", "link", to="user"),
            Field("version", "integer"),
            Field(STATUS_FIELD, "string"),
        )
    }


def field_type(f: Field) -> str:
    """The expression type of a field: text kinds become "string", links "link:<target>"."""
    if f.type in _TEXT_TYPES:
        return "string"
    if f.type == "link":
        return f"link:{f.to}"
    if f.type == "table":
        return f"rows:{f.entity}"
    return f.type


@dataclass(frozen=True)
class Step:
    """One segment of a resolved path: the field and the entity that declares it."""

    name: str
    field: Field
    entity: str

    @property
    def kind(self) -> str:
        return {"link": "link", "table": "table"}.get(self.field.type, "value")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: usable as a cache key
class FieldScope:
    """Resolves field paths against ``entities`` starting at ``entity``.

    ``variables`` maps $parameter names to type names ("string", "integer",
    "decimal", "boolean", "date", "datetime", "daterange", "link:<entity>",
    "list:<type>"); $user, $today and $now are always there. ``aggregate=True``
    is for report measures: the expression must aggregate the entity's rows.
    """

    entities: Mapping[str, Entity]
    entity: str
    variables: Mapping[str, str] | None = None
    aggregate: bool = False
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def fields_of(self, entity: str) -> dict[str, Field]:
        """Every field an expression may name on ``entity``, system fields included."""
        if entity not in self._cache:
            target = self.entities[entity]
            known = {n: f for n, f in _system_fields().items() if n != "status" or target.has_status}
            known.update(target.fields)
            self._cache[entity] = known
        return self._cache[entity]

    def variable_types(self) -> dict[str, str]:
        """All $variables of this scope with their type names."""
        return {**BUILTIN_VARIABLES, **(self.variables or {})}

    def resolve(self, parts: tuple[str, ...], column: int, start: str | None = None) -> list[Step]:
        """The steps of field path ``parts`` from entity ``start`` (the scope's entity by default).

        Raises FW-E406 for unknown fields or following a field that is not a link
        or table, FW-E410 for a path through two table fields.
        """
        entity = start or self.entity
        steps: list[Step] = []
        for i, name in enumerate(parts):
            if entity not in self.entities:
                raise ExpressionError(UNKNOWN_FIELD, f"entity '{entity}' is not defined", column)
            known = self.fields_of(entity)
            if name not in known:
                where = ".".join(parts[:i]) if i else entity
                raise ExpressionError(
                    UNKNOWN_FIELD,
                    f"unknown field '{name}' on {where}",
                    column,
                    did_you_mean(name, known) or f"fields of {entity}: {', '.join(sorted(known))}",
                )
            step = Step(name, known[name], entity)
            steps.append(step)
            if i == len(parts) - 1:
                break
            if step.kind == "link":
                entity = step.field.to or ""
            elif step.kind == "table":
                if any(s.kind == "table" for s in steps[:-1]):
                    raise ExpressionError(
                        ROWS_MISUSE,
                        f"'{'.'.join(parts)}' goes through two table fields; only one level of child rows "
                        "can be aggregated",
                        column,
                    )
                entity = step.field.entity or ""
            else:
                raise ExpressionError(
                    UNKNOWN_FIELD,
                    f"'{'.'.join(parts[: i + 1])}' is a {step.field.type} field and has no field '{parts[i + 1]}'",
                    column,
                    "only link and table fields can be followed with '.'",
                )
        return steps
