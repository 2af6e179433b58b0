"""Storage: tables from the App, schema diff, plan and safe migrate.

The pipeline, as plain data: ``build_schema`` (tables) -> ``plan_migration`` (a Plan of
Operations, each judged safe / needs-data / destructive) -> ``migrate`` (applies it in
one transaction and records the metadata state).
"""

from formwork.storage.diff import plan_migration
from formwork.storage.engine import make_engine
from formwork.storage.migrate import migrate
from formwork.storage.plan import MigrationFailed, MigrationRefused, Operation, Plan
from formwork.storage.state import MetadataState, read_state
from formwork.storage.tables import Schema, build_schema

__all__ = [
    "MetadataState",
    "MigrationFailed",
    "MigrationRefused",
    "Operation",
    "Plan",
    "Schema",
    "build_schema",
    "make_engine",
    "migrate",
    "plan_migration",
    "read_state",
]
