"""Evaluating the entity's expressions (defaults, computed fields, required_if, checks).

Each expression text is compiled once by ``formwork.expressions`` and kept; evaluating
never parses again. ``$user`` is the acting user, ``$now``/``today()`` the service clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from formwork.expressions import EvalContext, compile_python
from formwork.records.actor import Actor


class Formulas:
    """Compiled expressions by text, shared by every write of one service."""

    def __init__(self) -> None:
        self._compiled: dict[str, Any] = {}

    def evaluate(self, text: str, record: Mapping[str, Any], actor: Actor, now: datetime) -> Any:
        """The value of expression ``text`` for ``record`` as ``actor`` at ``now``."""
        compiled = self._compiled.get(text)
        if compiled is None:
            compiled = self._compiled[text] = compile_python(text)
        return compiled(record, EvalContext(user=actor.as_expression_user(), now=now))
