"""What a running deployment holds in memory: built once at start, shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from formwork.metadata.model import App
from formwork.metadata.project import Project
from formwork.plugins import HookRegistry
from formwork.records import RecordService
from formwork.storage import Schema


@dataclass(frozen=True)
class Runtime:
    """The compiled metadata and the services built from it (``app.extensions["formwork"]``).

    ``schema_warning`` is set when the database was migrated for other metadata than
    ``app_model`` (or never): the screens show it in a banner.
    """

    project: Project
    app_model: App
    schema: Schema
    engine: sa.Engine
    records: RecordService
    hooks: HookRegistry
    schema_warning: str | None = None
