"""``formwork serve``: migrate if that is safe, then serve the screens and the API."""

from __future__ import annotations

from pathlib import Path

import click

from formwork.cli.context import project_option, resolve_project
from formwork.cli.database import apply_migration, compiled, open_engine


@click.command("serve")
@project_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--no-migrate", is_flag=True, help="Serve without migrating first.")
def serve_command(project_dir: Path | None, host: str, port: int, no_migrate: bool) -> None:
    """Serve the deployment with the built-in server (use gunicorn with formwork.web:wsgi for production)."""
    from werkzeug.serving import run_simple

    from formwork.web import create_app

    project = resolve_project(project_dir)
    app = compiled(project)
    engine = open_engine(project)
    if not no_migrate:
        apply_migration(project, app, engine, allow_destructive=False)
    flask_app = create_app(project, app_model=app, engine=engine)
    click.echo(f"Serving {project.name} on http://{host}:{port}/ (Ctrl+C to stop)")
    run_simple(host, port, flask_app, threaded=True, use_reloader=False)
