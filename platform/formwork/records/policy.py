"""The seam where permissions plug in.

``RecordService`` asks its policy before every read and write. The security stage
provides a policy that evaluates roles and grants; until then every actor may do
everything. Callers never change: they already pass the actor and the channel.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa

from formwork.records.actor import Actor


class RecordPolicy(Protocol):
    """Decides what an actor may do. Refusals raise ``PermissionDenied``."""

    def authorize(self, action: str, entity: str, actor: Actor, channel: str | None, record: dict[str, Any] | None) -> None:
        """Raise ``PermissionDenied`` unless ``actor`` may do ``action`` (create, read, update,
        delete) on ``entity`` (on ``record`` when it exists);
        ``channel`` is None for reads."""

    def row_filter(self, entity: str, actor: Actor, table: sa.Table) -> sa.ColumnElement[bool] | None:
        """A condition limiting the rows ``actor`` may read, or None for all rows."""


class AllowAll:
    """The default policy: every actor may do everything."""

    def authorize(self, action: str, entity: str, actor: Actor, channel: str | None, record: dict[str, Any] | None) -> None:
        """Allow."""

    def row_filter(self, entity: str, actor: Actor, table: sa.Table) -> sa.ColumnElement[bool] | None:
        """No limit."""
        return None
