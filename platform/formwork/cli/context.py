"""What every command needs: the project folder, its compiled metadata and its database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from formwork.metadata.project import PROJECT_FILE, Project, find_project_root, load_project
from formwork.problems import Problem, ProblemsFound

project_option = click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Deployment folder holding {PROJECT_FILE} (default: the current folder or the nearest one above).",
)


def print_problems(problems: Iterable[Problem], output_format: str = "text") -> None:
    """Print problems one per line (text) or as a JSON document, to stdout."""
    problems = list(problems)
    if output_format == "json":
        import json

        click.echo(json.dumps({"ok": not problems, "problems": [p.as_dict() for p in problems]}, ensure_ascii=False, indent=2))
        return
    for problem in problems:
        click.echo(problem.format())
    if problems:
        count = len(problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} found.", err=True)


def fail(problems: Iterable[Problem], output_format: str = "text") -> None:
    """Print the problems and exit with status 1."""
    print_problems(problems, output_format)
    sys.exit(1)


def resolve_project(project_dir: Path | None, output_format: str = "text") -> Project:
    """Load the deployment's project file or exit with its problems."""
    root = project_dir if project_dir is not None else (find_project_root(Path.cwd()) or Path.cwd())
    try:
        return load_project(root)
    except ProblemsFound as found:
        fail(found.problems, output_format)
        raise  # unreachable: fail() exits


def git_commit(folder: Path) -> str | None:
    """The HEAD commit when the folder is inside a git checkout, else None."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None
