"""The workflow's HTTP API, a blueprint under ``/api/v1`` beside the records API.

- ``POST /api/v1/<entity>/<id>/workflow/<action>`` with JSON ``{comment, user, step,
  position}``: any approval action (submit, approve, reject, return, withdraw, transfer,
  delegate, add_approver, remove_approver, urge, comment, cc) or a plain workflow's
  transition by name. 409 when the action no longer applies, 403 when it is not the
  caller's to take, 422 for wrong input, 404 for an unknown record.
- ``GET /api/v1/<entity>/<id>/workflow`` -> the flow's status, step, who it waits for and
  the actions the caller may take now
- ``GET /api/v1/tasks?box=waiting|submitted|handled|cc`` -> ``{"items": [...]}``
- ``GET /api/v1/<entity>/<id>/timeline`` -> ``{"items": [...]}``
- ``GET /api/v1/workflow/stats[?flow=name]``
- ``GET /api/v1/notifications[?unread=1]`` -> ``{"items": [...]}``; admins:
  ``GET /api/v1/notifications/failed`` (mail that could not be delivered)

Errors have the records API's shape: ``{"errors": [{"field", "code", "message"}]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask
import sqlalchemy as sa

from formwork.records import Actor, FieldError
from formwork.web.api import request_actor
from formwork.web.api.errors import ApiError, json_object, refuse, register_error_handlers
from formwork.web.api.payload import json_response
from formwork.web.runtime import Runtime, flow_engine
from formwork.workflow.actions import FlowEngine
from formwork.workflow.errors import WorkflowError
from formwork.workflow.notify import failed_notifications, mark_read, notifications_of
from formwork.workflow.stats import approval_stats

BLUEPRINT_NAME = "formwork_workflow"
BODY_KEYS = ("comment", "user", "step", "position")
MAX_PAGE = 500


def workflow_blueprint(actor: Callable[[], Actor] = request_actor) -> flask.Blueprint:
    """The workflow API. ``actor`` names the caller of the current request (the records
    API's ``request_actor`` by default). Register it on a Formwork Flask app, whose
    ``extensions["formwork"]`` holds the ``Runtime``."""
    blueprint = flask.Blueprint(BLUEPRINT_NAME, __name__, url_prefix="/api/v1")
    register_error_handlers(blueprint)

    @blueprint.errorhandler(WorkflowError)
    def refused(error: WorkflowError) -> flask.Response:
        return json_response({"errors": [{"field": "", "code": error.code, "message": error.message}]}, error.status)

    @blueprint.post("/<entity_name>/<record_id>/workflow/<action>")
    def act(entity_name: str, record_id: str, action: str) -> flask.Response:
        runtime = _runtime()
        _entity(runtime, entity_name)
        body = _body()
        caller = actor()
        _user_id(caller)
        number = _id(record_id)
        # as on the screens: one acts only on a record one may read (404 otherwise, like a missing one)
        runtime.records.get(entity_name, number, caller)
        result = _engine(runtime).act(entity_name, number, action, caller, **body)
        return json_response(result.as_dict())

    @blueprint.get("/<entity_name>/<record_id>/workflow")
    def state(entity_name: str, record_id: str) -> flask.Response:
        runtime = _runtime()
        _entity(runtime, entity_name)
        number = _id(record_id)
        caller = actor()
        runtime.records.get(entity_name, number, caller)  # 404/403 unless the caller may see it
        return json_response(_engine(runtime).state(entity_name, number, caller))

    @blueprint.get("/tasks")
    def tasks() -> flask.Response:
        user_id = _user_id(actor())
        box = flask.request.args.get("box", "waiting")
        limit, offset = _page()
        return json_response({"items": _engine(_runtime()).inbox(user_id, box, limit, offset)})

    @blueprint.get("/<entity_name>/<record_id>/timeline")
    def timeline(entity_name: str, record_id: str) -> flask.Response:
        runtime = _runtime()
        _entity(runtime, entity_name)
        number = _id(record_id)
        runtime.records.get(entity_name, number, actor())  # 404/403 unless the caller may see it
        return json_response({"items": _engine(runtime).timeline(entity_name, number)})

    @blueprint.get("/workflow/stats")
    def stats() -> flask.Response:
        runtime = _runtime()
        engine = _engine(runtime)
        caller = actor()
        flow = flask.request.args.get("flow")
        scope = _report_scope(runtime, caller)
        if flow is not None and scope is not None and flow not in scope:
            known = flow in runtime.app_model.approvals or flow in runtime.app_model.workflows
            raise refuse(403 if known else 404, "flow", "forbidden" if known else "not_found",
                         f"you may not see the statistics of '{flow}'" if known else f"there is no flow '{flow}'")
        with runtime.engine.connect() as conn:
            return json_response(approval_stats(conn, engine.tables, engine.clock(), flow, scope))

    @blueprint.get("/notifications")
    def notifications() -> flask.Response:
        runtime = _runtime()
        user_id = _user_id(actor())
        unread = flask.request.args.get("unread") in ("1", "true", "yes")
        with runtime.engine.connect() as conn:
            return json_response({"items": notifications_of(conn, _engine(runtime).tables, user_id, unread)})

    @blueprint.post("/notifications/read")
    def read() -> flask.Response:
        runtime = _runtime()
        user_id = _user_id(actor())
        body = json_object(("ids", "all"))
        ids = body.get("ids")
        if body.get("all") is True and ids is None:
            wanted = None
        elif isinstance(ids, list) and ids and all(isinstance(i, int) and not isinstance(i, bool) for i in ids) and "all" not in body:
            wanted = ids
        else:
            raise refuse(422, "ids", "required", 'send {"ids": [notification ids]} or {"all": true}')
        engine = _engine(runtime)
        with runtime.engine.begin() as conn:
            marked = mark_read(conn, engine.tables, user_id, engine.clock(), wanted)
        return json_response({"marked": marked})

    @blueprint.get("/notifications/failed")
    def failed() -> flask.Response:
        runtime = _runtime()
        if not actor().is_admin:
            raise refuse(403, "", "forbidden", "only admins see undeliverable mail")
        with runtime.engine.connect() as conn:
            return json_response({"items": failed_notifications(conn, _engine(runtime).tables)})

    return blueprint


def _runtime() -> Runtime:
    return flask.current_app.extensions["formwork"]


def _engine(runtime: Runtime) -> FlowEngine:
    """The app's one engine, shared with the screens."""
    return flow_engine(runtime)


def _report_scope(runtime: Runtime, caller: Actor) -> dict[str, Any] | None:
    """Flow name -> the condition on its runs for the records ``caller`` may report on (the
    entity's ``report`` grants, their row rules in SQL); None for an admin (everything)."""
    if caller.is_admin:
        return None
    app, policy, tables = runtime.app_model, runtime.records.policy, runtime.schema.tables
    instance = runtime.schema.metadata.tables["fw_flow_instance"]
    scope: dict[str, Any] = {}
    for flow in [*app.approvals.values(), *app.workflows.values()]:
        table = tables[flow.entity]
        if not policy.accesses(flow.entity, caller, table, "report"):
            continue
        rows = policy.row_filter(flow.entity, caller, table, "report")
        scope[flow.name] = sa.true() if rows is None else instance.c.record_id.in_(sa.select(table.c.id).where(rows))
    return scope


def _entity(runtime: Runtime, name: str) -> None:
    if name not in runtime.app_model.entities:
        raise refuse(404, "", "not_found", f"there is no entity '{name}'")


def _id(text: str) -> int:
    if not text.isdigit():
        raise refuse(404, "", "not_found", f"'{text}' is not a record id")
    return int(text)


def _user_id(caller: Actor) -> int:
    if caller.user_id is None:
        raise refuse(401, "", "login_required", "log in to take part in approvals")
    return caller.user_id


def _page() -> tuple[int, int]:
    args = flask.request.args
    try:
        limit = int(args.get("limit", 100))
        offset = int(args.get("offset", 0))
    except ValueError:
        raise refuse(422, "limit", "type", "limit and offset must be whole numbers") from None
    if not 0 < limit <= MAX_PAGE or offset < 0:
        raise refuse(422, "limit", "range", f"limit must be 1 to {MAX_PAGE} and offset at least 0")
    return limit, offset


def _body() -> dict[str, Any]:
    """The action's options from the JSON body (which may be empty)."""
    raw = flask.request.get_data(cache=True)
    if not raw.strip():
        return {}
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        raise refuse(400, "", "bad_json", "the body must be a JSON object like {\"comment\": \"...\"}")
    errors = [FieldError(key, "unknown_field", f"is not an option of workflow actions ({', '.join(BODY_KEYS)})") for key in body if key not in BODY_KEYS]
    errors += [FieldError(key, "type", "must be text") for key in BODY_KEYS if body.get(key) is not None and not isinstance(body[key], str)]
    if errors:
        raise ApiError(422, errors)
    return {key: body[key] for key in BODY_KEYS if body.get(key) is not None}
