"""What a running deployment holds in memory: built once at start, shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

import flask
import sqlalchemy as sa

from formwork.metadata.model import App
from formwork.metadata.project import Project
from formwork.plugins import HookRegistry
from formwork.records import RecordService
from formwork.storage import Schema
from formwork.workflow.actions import FlowEngine

# Where the app keeps its one FlowEngine (the workflow API and the screens share it).
FLOW_ENGINE_KEY = "formwork_workflow"


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


def flow_engine(runtime: Runtime) -> FlowEngine:
    """The current app's FlowEngine on ``runtime``'s records, made on first use and kept in
    ``app.extensions`` (it keeps compiled conditions, so one per app is enough)."""
    extensions = flask.current_app.extensions
    engine = extensions.get(FLOW_ENGINE_KEY)
    if engine is None or engine.records is not runtime.records:
        engine = extensions[FLOW_ENGINE_KEY] = FlowEngine(runtime.records)
    return engine
