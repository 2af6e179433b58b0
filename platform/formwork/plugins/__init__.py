"""Plugins: Python code registered under names that metadata refers to.

A plugin module decorates functions with ``@hook("purchasing.check_budget")``.
Modules are discovered from the deployment's plugin folders and from installed
packages' ``formwork.plugins`` entry points. Metadata never imports anything:
it can only name a hook that a plugin registered.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formwork.problems import Place, Problem

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "formwork.plugins"

def hook(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function under ``name`` (dotted, e.g. ``purchasing.check_budget``)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        function.formwork_hook = name  # type: ignore[attr-defined]
        return function

    return register


class PluginError(Exception):
    """A plugin refused the operation with a message a user may read."""

    def __init__(self, message: str, field: str | None = None, code: str = "plugin"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


@dataclass
class HookRegistry:
    """Hook names to functions, plus the problems met while loading plugin modules."""

    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def names(self) -> set[str]:
        return set(self.hooks)

    def get(self, name: str) -> Callable[..., Any] | None:
        return self.hooks.get(name)

    def add(self, name: str, function: Callable[..., Any], origin: str) -> None:
        if name in self.hooks and self.hooks[name] is not function:
            self.problems.append(
                Problem("FW-E601", f"hook '{name}' is registered twice: in {self.origins[name]} and in {origin}", Place(origin))
            )
            return
        self.hooks[name] = function
        self.origins[name] = origin


def _collect(registry: HookRegistry, module: Any, origin: str) -> None:
    """Register the hooks a module defines itself (not ones it imported from elsewhere)."""
    for value in vars(module).values():
        name = getattr(value, "formwork_hook", None)
        if isinstance(name, str) and callable(value) and getattr(value, "__module__", None) == module.__name__:
            registry.add(name, value, origin)


def _import_file(path: Path, display: str, registry: HookRegistry) -> None:
    module_name = f"formwork_plugin_{abs(hash(str(path.resolve())))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken plugin must be reported, not crash validation
        sys.modules.pop(module_name, None)
        line = 0
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        if isinstance(exc, SyntaxError) and exc.lineno:
            line = exc.lineno
        registry.problems.append(
            Problem("FW-E602", f"plugin failed to load: {type(exc).__name__}: {exc}", Place(display, line), hint="fix the plugin; its hooks are unavailable until it imports")
        )
        return
    _collect(registry, module, display)


def load_plugins(plugin_dirs: tuple[Path, ...] | list[Path], display: Callable[[Path], str] = str, entry_points: bool = True) -> HookRegistry:
    """Import every ``*.py`` under the plugin folders (sorted) and every entry-point plugin."""
    registry = HookRegistry()
    for folder in plugin_dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            if any(part.startswith((".", "_")) for part in path.relative_to(folder).parts[:-1]):
                continue
            if path.name.startswith("test_"):
                continue
            _import_file(path, display(path), registry)
    if entry_points:
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = entry.load()
            except Exception as exc:
                registry.problems.append(Problem("FW-E602", f"plugin entry point '{entry.name}' failed to load: {exc}", Place(entry.value)))
                continue
            if isinstance(loaded, types.ModuleType):
                _collect(registry, loaded, f"entry point {entry.name}")
            elif isinstance(getattr(loaded, "formwork_hook", None), str):
                registry.add(loaded.formwork_hook, loaded, f"entry point {entry.name}")
    return registry
