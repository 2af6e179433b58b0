"""``formwork worker`` (timers and mail) and ``formwork tasks`` (a user's inbox)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import sqlalchemy as sa

from formwork.cli.context import project_option, resolve_project
from formwork.cli.database import compiled, open_engine
from formwork.metadata.project import Project
from formwork.plugins import load_plugins
from formwork.records import RecordService
from formwork.storage import build_schema
from formwork.workflow.actions import FlowEngine
from formwork.workflow.errors import WorkflowError
from formwork.workflow.fields import StepGuard
from formwork.workflow.notify import Mailer
from formwork.workflow.tasks import BOXES
from formwork.workflow.worker import work, work_forever


def _flows(project: Project) -> FlowEngine:
    app = compiled(project)
    engine = open_engine(project)
    hooks = load_plugins(project.plugin_dirs, project.display)
    schema = build_schema(app)
    return FlowEngine(RecordService(app, schema, engine, hooks, flows=StepGuard(app, schema.metadata.tables)))


@click.command("worker")
@project_option
@click.option("--once", is_flag=True, help="Run the due timers and mail once, then exit (for cron).")
@click.option("--pause", default=10.0, show_default=True, type=float, help="Seconds to wait when there was nothing to do.")
def worker_command(project_dir: Path | None, once: bool, pause: float) -> None:
    """Run reminders, escalations, timeouts and mail delivery (SMTP_URL, e.g.
    smtp://user:password@mail.example.com:587?starttls=1&from=oa@example.com).
    Several workers may share one PostgreSQL database."""
    project = resolve_project(project_dir)
    flows = _flows(project)
    smtp_url = os.environ.get("SMTP_URL")
    try:
        mailer = Mailer.from_url(smtp_url) if smtp_url else None
    except ValueError as wrong:
        raise click.ClickException(str(wrong)) from None
    if mailer is None:
        click.echo("SMTP_URL is not set: notifications stay in the app and are not mailed.", err=True)
    if once:
        done = work(flows, mailer)
        click.echo(f"{done.jobs} timer job(s), {done.mails} mail(s).")
        return
    click.echo(f"Worker for {project.name} started (Ctrl+C to stop).")
    try:
        work_forever(flows, mailer, pause)
    except KeyboardInterrupt:
        click.echo("Worker stopped.")


@click.command("tasks")
@project_option
@click.option("--user", "username", required=True, help="Whose inbox to show (username).")
@click.option("--box", type=click.Choice(BOXES), default="waiting", show_default=True)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def tasks_command(project_dir: Path | None, username: str, box: str, output_format: str) -> None:
    """Show one box of a user's approval inbox: waiting, submitted, handled or cc."""
    project = resolve_project(project_dir)
    flows = _flows(project)
    users = flows.tables["fw_user"]
    with flows.records.engine.connect() as conn:
        user_id = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
    if user_id is None:
        raise click.ClickException(f"there is no user '{username}'")
    try:
        items = flows.inbox(int(user_id), box)
    except WorkflowError as refused:
        raise click.ClickException(refused.message) from None
    if output_format == "json":
        click.echo(json.dumps({"items": items}, ensure_ascii=False, indent=2))
        return
    if not items:
        click.echo(f"Nothing in {username}'s {box} box.")
    for item in items:
        click.echo(f"{item['entity']} {item['record_id']}  {item['title']}  step: {item['step'] or '-'}  {item['state']}")
