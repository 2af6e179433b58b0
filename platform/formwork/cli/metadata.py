"""``formwork validate``: check a deployment's metadata without touching the database."""

from __future__ import annotations

from pathlib import Path

import click

from formwork.cli.context import fail, print_problems, project_option, resolve_project
from formwork.metadata import validate_project


@click.command("validate")
@project_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", help="Output format.")
def validate_command(project_dir: Path | None, output_format: str) -> None:
    """Check every metadata file and report all mistakes at once (exit 1 when there are any)."""
    project = resolve_project(project_dir, output_format)
    app, problems = validate_project(project)
    if problems or app is None:
        fail(problems, output_format)
    if output_format == "json":
        print_problems([], output_format)
        return
    click.echo(
        f"OK: {len(app.entities)} entities, {len(app.forms)} forms, {len(app.workflows)} workflows, "
        f"{len(app.approvals)} approvals, {len(app.roles)} roles, {len(app.reports)} reports "
        f"(metadata {app.metadata_hash[:12]})."
    )
