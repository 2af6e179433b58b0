"""The records stage: ``RecordService``, the one write path of every channel.

REST, screens, import, workflow actions, plugins, seed data and the CLI create, update
and delete records only through ``RecordService``; see docs/records.md for what a
save does, in order.
"""

from formwork.records.actor import Actor
from formwork.records.errors import (
    RECORD,
    FieldError,
    PermissionDenied,
    PluginFailure,
    RecordInvalid,
    RecordNotFound,
    StaleVersion,
)
from formwork.records.hooks import HOOK_POINTS, HookContext
from formwork.records.policy import AllowAll, RecordPolicy
from formwork.records.query import RecordQuery
from formwork.records.service import CHANNELS, RecordService

__all__ = [
    "CHANNELS",
    "HOOK_POINTS",
    "RECORD",
    "Actor",
    "AllowAll",
    "FieldError",
    "HookContext",
    "PermissionDenied",
    "PluginFailure",
    "RecordInvalid",
    "RecordNotFound",
    "RecordPolicy",
    "RecordQuery",
    "RecordService",
    "StaleVersion",
]
