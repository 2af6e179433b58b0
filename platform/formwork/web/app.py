"""The Flask app factory: one app per deployment, built once from its compiled metadata."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import flask
import sqlalchemy as sa
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme

from formwork.metadata import compile_project
from formwork.metadata.model import App, label_text
from formwork.metadata.project import Project, find_project_root, load_project
from formwork.plugins import HookRegistry, load_plugins
from formwork.records import RecordService
from formwork.security import RolePolicy
from formwork.storage import build_schema, make_engine, read_state
from formwork.web.account_screens import register_account_screens
from formwork.web.api import register_api, request_actor
from formwork.web.api_accounts import accounts_blueprint
from formwork.web.api_transfer import transfer_blueprint
from formwork.web.api_workflow import workflow_blueprint
from formwork.web.assets import ui_root
from formwork.web.auth import current_actor, init_auth
from formwork.web.flow_screens import FlowRecordView, register_flow_screens
from formwork.web.forms import entity_label
from formwork.web.runtime import Runtime
from formwork.web.screens import menu_layout, register_screens
from formwork.workflow.fields import StepGuard

log = logging.getLogger(__name__)

SECRET_KEY_FILE = "secret_key"


def create_app(
    project: Project,
    *,
    app_model: App | None = None,
    engine: sa.Engine | None = None,
    config: Mapping[str, Any] | None = None,
) -> flask.Flask:
    """A Flask app serving ``project``: the index page, ``/healthz``, the login page, the
    CRUD screens under ``/admin`` and the REST API (records, workflow, import and export)
    under ``/api/v1``, with the approvals (inbox, approval panels, notifications) on the
    screens. Every page but ``/login`` and ``/healthz`` needs a login; the API
    needs a bearer token or a login session; the metadata's roles decide the rest.

    Compiles the metadata unless ``app_model`` is given and opens the project's database
    unless ``engine`` is given. It does not migrate; when the database was migrated for
    other metadata it logs a warning and every page shows a banner. ``config`` entries
    override Flask settings.
    """
    # Plugin modules are imported once, for the compiler's name checks and the runtime alike.
    hooks = load_plugins(project.plugin_dirs, project.display)
    app_model = app_model if app_model is not None else compile_project(project, hooks)
    engine = engine if engine is not None else _open_engine(project.database_url)
    runtime = build_runtime(project, app_model, engine, hooks)

    ui = ui_root()
    app = flask.Flask("formwork", template_folder=str(ui / "templates"), static_folder=str(ui / "static"))
    app.config["SECRET_KEY"] = project.secret_key or _instance_secret(project.instance_dir)
    # The session holds the forms' CSRF secret; other sites' forms must not send it along.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.update(config or {})
    app.extensions["formwork"] = runtime
    # login, logout, CSRF checks and the login requirement of every page outside the API
    init_auth(app)

    title = label_text(app_model.label, app_model.default_locale, app_model.name) or project.name
    admin = Admin(
        app,
        name=title,
        url="/admin",
        index_view=EntityIndexView(runtime, name="Home", url="/admin", endpoint="admin"),
        theme=Bootstrap4Theme(base_template="formwork/admin_base.html", fluid=True),
    )
    # the approvals come first in the menu: an OA user starts from their inbox
    register_flow_screens(admin, runtime)
    register_screens(admin, runtime, FlowRecordView)
    register_account_screens(admin, runtime)
    register_api(app)
    app.register_blueprint(workflow_blueprint(actor=request_actor))
    app.register_blueprint(transfer_blueprint(actor=request_actor))
    app.register_blueprint(accounts_blueprint())

    @app.context_processor
    def formwork_context() -> dict[str, Any]:
        return {"formwork_title": title, "formwork_banner": runtime.schema_warning}

    @app.get("/")
    def index() -> str:
        return flask.render_template("formwork/index.html", groups=entity_groups(runtime))

    @app.get("/healthz")
    def healthz() -> tuple[flask.Response, int]:
        try:
            with runtime.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            log.warning("health check: database unreachable: %s", exc)
            return flask.jsonify(status="error", database="unreachable"), 503
        return flask.jsonify(
            status="ok", app=app_model.name, metadata_hash=app_model.metadata_hash, schema_current=runtime.schema_warning is None
        ), 200

    return app


def build_runtime(project: Project, app_model: App, engine: sa.Engine, hooks: HookRegistry | None = None) -> Runtime:
    """The tables, plugin hooks and record service of a compiled app on ``engine``; the
    project's plugins are loaded unless ``hooks`` holds them already."""
    hooks = hooks if hooks is not None else load_plugins(project.plugin_dirs, project.display)
    schema = build_schema(app_model)
    # every channel reads and writes through this service, so the roles bind them all
    records = RecordService(
        app_model, schema, engine, hooks, policy=RolePolicy(app_model, schema.tables, engine), flows=StepGuard(app_model, schema.metadata.tables)
    )
    return Runtime(
        project=project,
        app_model=app_model,
        schema=schema,
        engine=engine,
        records=records,
        hooks=hooks,
        schema_warning=schema_warning(app_model, engine),
    )


def schema_warning(app_model: App, engine: sa.Engine) -> str | None:
    """A sentence for the banner when the database does not match the metadata, else None."""
    state = read_state(engine)
    if state is None:
        message = "The database has not been migrated yet. Run 'formwork migrate', then restart."
    elif state.metadata_hash != app_model.metadata_hash:
        message = (
            "The database was migrated for different metadata than this server runs. "
            "Run 'formwork plan' and 'formwork migrate', then restart."
        )
    else:
        return None
    log.warning("%s", message)
    return message


def entity_groups(runtime: Runtime) -> list[tuple[str, list[tuple[str, str]]]]:
    """(menu group, [(entity label, list URL)]) for the index pages, in menu order: the
    entities the logged-in user may read."""
    locale = runtime.app_model.default_locale
    actor = current_actor()
    policy, tables = runtime.records.policy, runtime.schema.tables
    groups = []
    for group, entities in menu_layout(runtime.app_model):
        shown = [(entity_label(e, locale), flask.url_for(f"records_{e.name}.index_view"))
                 for e in entities if actor is not None and policy.accesses(e.name, actor, tables[e.name], "read")]
        if shown:
            groups.append((group, shown))
    return groups


class EntityIndexView(AdminIndexView):
    """The admin's home page: the entities, grouped as in the menu."""

    def __init__(self, runtime: Runtime, **kwargs: Any):
        super().__init__(**kwargs)
        self.runtime = runtime

    @expose("/")
    def index(self) -> str:
        return self.render("formwork/admin_index.html", groups=entity_groups(self.runtime))


def _open_engine(url: str) -> sa.Engine:
    """An engine on ``url``; a SQLite file's folder is created first."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


def _instance_secret(instance_dir: Path) -> str:
    """The secret key kept in ``instance/secret_key`` (mode 0600), created on first use.

    Every process of the deployment reads the same file, so sessions and form tokens
    stay valid whichever process serves a request.
    """
    path = instance_dir / SECRET_KEY_FILE
    instance_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written aside and linked into place: a second process starting at the same time
        # either wins the link or reads the complete file of the winner.
        draft = instance_dir / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text(encoding="utf-8").strip()


_wsgi_app: flask.Flask | None = None
_wsgi_lock = threading.Lock()


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI entry point for servers such as gunicorn (``formwork.web:wsgi``).

    The deployment folder is ``FORMWORK_PROJECT`` or the nearest one holding
    formwork.yaml above the working directory; the app is built on the first request.
    """
    global _wsgi_app
    with _wsgi_lock:
        if _wsgi_app is None:
            start = Path(os.environ.get("FORMWORK_PROJECT") or Path.cwd())
            _wsgi_app = create_app(load_project(find_project_root(start) or start))
    return _wsgi_app(environ, start_response)
