"""Evaluating the entity's expressions (defaults, computed fields, required_if, checks).

Each expression is parsed and compiled once per (entity, text) by ``formwork.expressions``
and kept; evaluating never parses again. Inside an expression ``$user`` is the acting
user (its stored record, plus ``roles``), ``today()``/``now()`` come from the service
clock, and a path through a link (``department.name``) reads the linked record from the
database in the transaction of the write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from formwork.expressions import EvalContext, FieldScope, compile_python, parse
from formwork.metadata.model import App
from formwork.records.actor import Actor

# (entity, id) -> the linked record, or None when there is none
Lookup = Callable[[str, Any], Mapping[str, Any] | None]


class ActingUser(Mapping[str, Any]):
    """``$user``: the actor's id, username, department and roles at once; any other field
    (``$user.manager``) is read from the user's record the first time it is asked for."""

    def __init__(self, actor: Actor, lookup: Lookup):
        self._known = actor.as_expression_user()
        self._actor = actor
        self._lookup = lookup
        self._stored: Mapping[str, Any] | None = None

    def _record(self) -> Mapping[str, Any]:
        if self._stored is None:
            found = self._lookup("user", self._actor.user_id) if self._actor.user_id is not None else None
            self._stored = found or {}
        return self._stored

    def __getitem__(self, key: str) -> Any:
        if key in self._known:
            return self._known[key]
        return self._record()[key]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._record(), **self._known})

    def __len__(self) -> int:
        return len({**self._record(), **self._known})


class Formulas:
    """Compiled expressions of one app, shared by every write of one service."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._compiled: dict[tuple[str, str], Any] = {}

    def evaluate(self, entity: str, text: str, record: Mapping[str, Any], actor: Actor, now: datetime, lookup: Lookup) -> Any:
        """The value of expression ``text`` of ``entity`` for ``record`` as ``actor`` at ``now``."""
        key = (entity, text)
        compiled = self._compiled.get(key)
        if compiled is None:
            scope = FieldScope(entities=self.app.entities, entity=entity)
            compiled = self._compiled[key] = compile_python(parse(text), scope)
        context = EvalContext(user=ActingUser(actor, lookup), now=now, lookup=lookup)
        return compiled(record, context)
