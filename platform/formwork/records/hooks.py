"""Calling plugin hooks from the write path, and turning their failures into our errors.

Every hook is called as ``fn(record, ctx)`` with ``ctx`` a ``HookContext``. A hook that
raises ``PluginError`` refuses the write with a message for the user; any other
exception is a bug in the plugin: it is logged with its traceback under an error id and
the write is rolled back with ``PluginFailure(error_id)``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from formwork.metadata.model import App
from formwork.plugins import HookRegistry, PluginError
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

if TYPE_CHECKING:
    from formwork.records.service import RecordService

log = logging.getLogger(__name__)

# Hook points an entity may name in its `hooks:` mapping, in the order a save meets them.
HOOK_POINTS = ("before_validate", "before_save", "after_save", "before_delete", "after_delete")

# Errors of a nested write through the service: already meant for the user, passed on as they are.
PASS_THROUGH = (RecordInvalid, StaleVersion, RecordNotFound, PermissionDenied, PluginFailure)


@dataclass(frozen=True)
class HookContext:
    """What a hook gets besides the record.

    ``old`` is the record before this write (None on create); ``service`` writes other
    records through the same path and inside the same transaction; ``entity`` and
    ``field`` say which entity (and, for validators and compute hooks, which field) is
    being saved."""

    user: Actor
    app: App
    channel: str
    old: dict[str, Any] | None
    service: RecordService
    entity: str = ""
    field: str | None = None


def _crashed(name: str, entity: str, crash: BaseException | None) -> PluginFailure:
    error_id = uuid.uuid4().hex[:12]
    if crash is None:
        log.error("plugin hook %r named by %s is not registered (error id %s)", name, entity, error_id)
    else:
        log.error("plugin hook %r failed on %s (error id %s)", name, entity, error_id, exc_info=crash)
    return PluginFailure(error_id, name)


def call_hook(hooks: HookRegistry | None, name: str, record: dict[str, Any], ctx: HookContext, field: str = RECORD) -> Any:
    """Run hook ``name``; a ``PluginError`` becomes ``RecordInvalid`` (on its own field, else
    ``field``); any other exception is logged and raised as ``PluginFailure``."""
    function = hooks.get(name) if hooks is not None else None
    if function is None:
        # metadata validation reports unknown hooks; reaching here is a deployment mistake
        raise _crashed(name, ctx.entity, None)
    try:
        return function(record, ctx)
    except PluginError as refusal:
        raise RecordInvalid([FieldError(refusal.field or field, refusal.code, refusal.message)]) from refusal
    except PASS_THROUGH:
        raise
    except Exception as crash:
        raise _crashed(name, ctx.entity, crash) from crash
