"""Helpers for the metadata tests: write a small deployment into a folder and validate it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from formwork.metadata import load_project, validate_project
from formwork.metadata.model import App
from formwork.problems import Problem


def write_project(root: Path, files: dict[str, str | bytes], layers: tuple[str, ...] = ("metadata",), plugins: dict[str, str] | None = None) -> Path:
    """A deployment at ``root`` (locales en and zh): formwork.yaml naming ``layers``, the metadata ``files``
    (paths relative to ``root``; text is dedented) and plugin modules."""
    root.mkdir(parents=True, exist_ok=True)
    layer_list = ", ".join(layers)
    (root / "formwork.yaml").write_text(f"name: shop\nlocales: [en, zh]\nmetadata: [{layer_list}]\nplugins: [plugins]\n", "utf-8")
    for layer in layers:
        (root / layer).mkdir(parents=True, exist_ok=True)
    (root / "plugins").mkdir(exist_ok=True)
    for name, text in (plugins or {}).items():
        (root / "plugins" / name).write_text(textwrap.dedent(text), "utf-8")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), "utf-8")
    return root


def validate(root: Path) -> tuple[App | None, list[Problem]]:
    """validate_project on the deployment at ``root``."""
    return validate_project(load_project(root, environ={}))


def problem_lines(root: Path) -> list[str]:
    """Every problem of the deployment, formatted as the CLI prints it."""
    app, problems = validate(root)
    assert (app is None) == bool(problems)
    return [p.format() for p in problems]
