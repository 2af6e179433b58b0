"""A migration plan as plain data: what would change, how safe it is, and why.

``plan_migration`` (in ``diff``) produces a ``Plan``; ``migrate`` applies it; the CLI
prints it. Operations carry names and numbers only, never SQLAlchemy objects, so a
plan can be shown, stored as JSON and compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from formwork.problems import Place, Problem

SAFE = "safe"
NEEDS_DATA = "needs-data"
DESTRUCTIVE = "destructive"

OPERATION_KINDS = (
    "create_table",
    "rename_table",
    "rename_column",
    "drop_index",
    "drop_unique",
    "drop_check",
    "drop_foreign_key",
    "drop_column",
    "drop_table",
    "add_column",
    "alter_type",
    "alter_nullable",
    "add_foreign_key",
    "add_unique",
    "add_check",
    "create_index",
)


@dataclass(frozen=True)
class Operation:
    """One change to the database.

    ``safety`` is ``safe`` (nothing at risk), ``needs-data`` (works only if the existing rows
    allow it; they were checked) or ``destructive`` (drops or narrows; needs
    ``allow_destructive`` and keeps the old data in an archive table). ``blocked`` means
    migrate refuses it as things stand; ``code`` then names the FW-E5xx reason.
    """

    kind: str
    table: str
    column: str | None = None
    safety: str = SAFE
    reason: str = ""
    blocked: bool = False
    code: str | None = None
    name: str | None = None  # constraint or index name
    old_name: str | None = None  # for renames: the table or column name before
    columns: tuple[str, ...] = ()  # for indexes and constraints
    detail: Mapping[str, Any] = field(default_factory=dict)  # row counts, sample values, archive table
    place: Place | None = None  # where the metadata declares the entity or field, when it still does

    def describe(self) -> str:
        """One line: what the operation does, in plain words."""
        target = f"{self.table}.{self.column}" if self.column else self.table
        return f"{self.kind} {target}: {self.reason}" if self.reason else f"{self.kind} {target}"

    def problem(self) -> Problem | None:
        """The refusal as a Problem when the operation is blocked."""
        if not self.blocked:
            return None
        hint = self.detail.get("hint")
        return Problem(self.code or "FW-E500", self.reason, place=self.place, path=self.describe_target(), hint=hint)

    def describe_target(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.table,
            "column": self.column,
            "safety": self.safety,
            "reason": self.reason,
            "blocked": self.blocked,
            "code": self.code,
            "name": self.name,
            "old_name": self.old_name,
            "columns": list(self.columns),
            "detail": _json_ready(dict(self.detail)),
            "place": str(self.place) if self.place else None,
        }


@dataclass(frozen=True)
class Plan:
    """The ordered operations that bring a database in line with an App."""

    operations: tuple[Operation, ...] = ()
    dialect: str = ""
    allow_destructive: bool = False
    metadata_hash: str = ""
    compared: bool = True  # False when migrate stopped before comparing (another migrate held the lock)

    @property
    def is_empty(self) -> bool:
        return not self.operations

    @property
    def blocked(self) -> bool:
        """True when migrate would refuse this plan."""
        return any(op.blocked for op in self.operations)

    def problems(self) -> list[Problem]:
        """One Problem per blocked operation."""
        return [p for p in (op.problem() for op in self.operations) if p is not None]

    def format(self) -> list[str]:
        """Human-readable lines, one per operation, marked with its safety."""
        if not self.compared:
            return ["Database not compared: another migrate holds the lock."]
        if self.is_empty:
            return ["Database is up to date: nothing to do."]
        marks = {SAFE: "+", NEEDS_DATA: "~", DESTRUCTIVE: "!"}
        lines = []
        for op in self.operations:
            line = f"{marks.get(op.safety, '?')} [{op.safety}] {op.describe()}"
            if op.blocked:
                line += f"  BLOCKED ({op.code})"
            lines.append(line)
            samples = op.detail.get("samples")
            if samples:
                lines.append("      e.g. " + ", ".join(repr(s) for s in samples))
        blocked = sum(op.blocked for op in self.operations)
        summary = f"{len(self.operations)} operation(s)"
        if blocked:
            summary += f", {blocked} blocked: migrate will refuse and change nothing"
        lines.append(summary)
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        return {
            "dialect": self.dialect,
            "allow_destructive": self.allow_destructive,
            "metadata_hash": self.metadata_hash,
            "compared": self.compared,
            "is_empty": self.is_empty,
            "blocked": self.blocked,
            "operations": [op.as_dict() for op in self.operations],
        }


class MigrationRefused(Exception):
    """Migrate refused to run; nothing in the database was changed."""

    def __init__(self, plan: Plan, problems: list[Problem]):
        self.plan = plan
        self.problems = problems
        super().__init__("\n".join(p.format() for p in problems))


class MigrationFailed(MigrationRefused):
    """The database rejected a statement during migrate; everything was rolled back.

    A kind of refusal: as with any MigrationRefused, the database is as it was.
    """

    def __init__(self, plan: Plan, problem: Problem):
        super().__init__(plan, [problem])


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
