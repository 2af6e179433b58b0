"""``formwork plan``, ``migrate`` and ``seed``: bring the database in line with the metadata."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import sqlalchemy as sa

from formwork.cli.context import fail, git_commit, project_option, resolve_project
from formwork.metadata import compile_project
from formwork.metadata.model import App
from formwork.metadata.project import Project
from formwork.problems import Place, Problem, ProblemsFound
from formwork.storage import MigrationRefused, build_schema, make_engine, migrate, plan_migration
from formwork.workflow.versions import InFlight, in_flight_report


def compiled(project: Project, output_format: str = "text") -> App:
    """The project's App, or exit with its metadata problems."""
    try:
        return compile_project(project)
    except ProblemsFound as found:
        fail(found.problems, output_format)
        raise


def open_engine(project: Project, output_format: str = "text") -> sa.Engine:
    """An engine on the project's database, checked by connecting once."""
    url = sa.engine.make_url(project.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(project.database_url)
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        shown = url.render_as_string(hide_password=True)
        fail([Problem("FW-E030", f"cannot connect to the database {shown}: {exc.__class__.__name__}: {getattr(exc, 'orig', exc)}",
                      Place("formwork.yaml"), "database", "check DATABASE_URL or 'database:' in formwork.yaml")], output_format)
    return engine


def apply_migration(project: Project, app: App, engine: sa.Engine, allow_destructive: bool, output_format: str = "text") -> None:
    """Migrate and print the applied plan; exit 1 with the refusal when it is blocked."""
    try:
        plan = migrate(engine, app, allow_destructive=allow_destructive, git_commit=git_commit(project.root))
    except MigrationRefused as refused:
        if output_format == "json":
            click.echo(json.dumps({"ok": False, "plan": refused.plan.as_dict(), "problems": [p.as_dict() for p in refused.problems]}, ensure_ascii=False, indent=2))
        else:
            for line in refused.plan.format():
                click.echo(line)
            for problem in refused.problems:
                click.echo(problem.format())
            click.echo("Migration refused; the database was not changed.", err=True)
        sys.exit(1)
    if output_format == "json":
        click.echo(json.dumps({"ok": True, "plan": plan.as_dict()}, ensure_ascii=False, indent=2))
    elif plan.is_empty:
        click.echo("Database is up to date.")
    else:
        for line in plan.format():
            click.echo(line)
        click.echo(f"Applied {len(plan.operations)} operation(s).")


def flows_in_flight(engine: sa.Engine, app: App) -> list[InFlight]:
    """Approvals under review whose current step (or flow) the new metadata no longer has."""
    if not sa.inspect(engine).has_table("fw_flow_instance"):
        return []
    schema = build_schema(app)
    with engine.connect() as conn:
        return in_flight_report(conn, app, {**schema.metadata.tables, **schema.tables})


@click.command("plan")
@project_option
@click.option("--allow-destructive", is_flag=True, help="Plan drops and narrowing changes as allowed (old data archived).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def plan_command(project_dir: Path | None, allow_destructive: bool, output_format: str) -> None:
    """Show the database operations the metadata needs, each marked safe / needs-data / destructive."""
    project = resolve_project(project_dir, output_format)
    app = compiled(project, output_format)
    engine = open_engine(project, output_format)
    plan = plan_migration(engine, app, allow_destructive=allow_destructive)
    in_flight = flows_in_flight(engine, app)
    if output_format == "json":
        document = plan.as_dict()
        document["in_flight"] = [item.__dict__ for item in in_flight]
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        if plan.is_empty:
            click.echo("Database is up to date: nothing to do.")
        else:
            for line in plan.format():
                click.echo(line)
        if in_flight:
            click.echo(f"{len(in_flight)} record(s) under review are on steps the metadata no longer has:")
            for item in in_flight:
                click.echo(f"  {item.describe()}")
    if plan.blocked:
        sys.exit(1)


@click.command("migrate")
@project_option
@click.option("--allow-destructive", is_flag=True, help="Apply drops and narrowing changes; the old data is kept in archive tables.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def migrate_command(project_dir: Path | None, allow_destructive: bool, output_format: str) -> None:
    """Change the database to match the metadata; refuses anything that would lose data."""
    project = resolve_project(project_dir, output_format)
    app = compiled(project, output_format)
    engine = open_engine(project, output_format)
    apply_migration(project, app, engine, allow_destructive, output_format)


@click.command("seed")
@project_option
@click.option("--demo", is_flag=True, required=True, help="Load the deployment's demo data (the files under its demo: folders).")
def seed_command(project_dir: Path | None, demo: bool) -> None:
    """Fill the database with the deployment's demo data; entities that already have rows are skipped."""
    from formwork.seeding import seed_demo
    from formwork.web.app import build_runtime

    project = resolve_project(project_dir)
    app = compiled(project)
    engine = open_engine(project)
    apply_migration(project, app, engine, allow_destructive=False)
    runtime = build_runtime(project, app, engine)
    try:
        report = seed_demo(project, runtime.records)
    except ProblemsFound as found:
        fail(found.problems)
    for item in report.files:
        if item.skipped:
            click.echo(f"{item.file}: skipped ({item.skipped})")
        else:
            click.echo(f"{item.file}: {item.created} created" + (f", {item.updated} updated" if item.updated else ""))
    total = sum(item.created for item in report.files)
    click.echo(f"Demo data: {total} record(s) created.")
