"""The seam where permissions plug in.

``RecordService`` asks its policy before every read and write. The security stage's
``RolePolicy`` evaluates the roles and grants of metadata; ``AllowAll`` (the default) lets
every actor do everything. Callers never change: they already pass the actor and the channel.

A policy answers three questions:

- ``authorize``: may the actor do this action on this kind of record at all? (403)
- ``row_filter``: which rows may the actor reach with an action? A SQL condition, so rows
  outside it are simply not found (404).
- ``accesses``: the grants behind the action, each with the rows it covers and the fields it
  hides or keeps read-only on those rows. The service applies them to every record it
  returns and every value it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from formwork.records.actor import Actor


@dataclass(frozen=True)
class Access:
    """What one grant lets the actor do: on the rows where ``rows`` holds (None: every row),
    the fields in ``hidden`` are neither shown nor written and those in ``read_only`` are
    shown but not written. ``source`` names the grant (a role) for messages."""

    rows: sa.ColumnElement[bool] | None = None
    hidden: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()
    source: str = ""


FULL_ACCESS = Access()


class RecordPolicy(Protocol):
    """Decides what an actor may do. Refusals raise ``PermissionDenied``."""

    def authorize(self, action: str, entity: str, actor: Actor, channel: str | None, record: dict[str, Any] | None) -> None:
        """Raise ``PermissionDenied`` unless ``actor`` may do ``action`` (create, read, update,
        delete, export, import, report or a custom action) on some records of ``entity``;
        ``channel`` is None for reads. Which rows is ``row_filter``'s answer."""

    def row_filter(self, entity: str, actor: Actor, table: sa.Table, action: str = "read") -> sa.ColumnElement[bool] | None:
        """A condition limiting the rows ``actor`` may reach with ``action``, or None for all rows."""

    def accesses(self, entity: str, actor: Actor, table: sa.Table, action: str) -> tuple[Access, ...]:
        """One ``Access`` per grant allowing ``action`` on ``entity``; empty when none does."""

    def hidden_fields(self, entity: str, actor: Actor) -> frozenset[str]:
        """Fields of ``entity`` hidden from ``actor`` on some rows: never shown in lists, and
        not usable to filter, search or sort (their values would leak through the order)."""


class AllowAll:
    """The default policy: every actor may do everything."""

    def authorize(self, action: str, entity: str, actor: Actor, channel: str | None, record: dict[str, Any] | None) -> None:
        """Allow."""

    def row_filter(self, entity: str, actor: Actor, table: sa.Table, action: str = "read") -> sa.ColumnElement[bool] | None:
        """No limit."""
        return None

    def accesses(self, entity: str, actor: Actor, table: sa.Table, action: str) -> tuple[Access, ...]:
        """Every row, every field."""
        return (FULL_ACCESS,)

    def hidden_fields(self, entity: str, actor: Actor) -> frozenset[str]:
        """Nothing hidden."""
        return frozenset()
