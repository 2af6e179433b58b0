"""What a workflow action can fail with. Each error says in plain words why nothing happened.

``status`` is the HTTP status the API answers with: 409 when the action no longer applies
(the record moved on, someone else decided first, the same action twice), 403 when the
actor has no part in it, 422 when the input is wrong (a missing comment, an unknown user),
404 when the record does not exist.
"""

from __future__ import annotations


class WorkflowError(Exception):
    """An action was refused; nothing was changed."""

    status = 422
    code = "workflow"

    def __init__(self, message: str, code: str | None = None):
        self.message = message
        if code is not None:
            self.code = code
        super().__init__(message)


class ActionConflict(WorkflowError):
    """The action no longer applies to the record as it is now (HTTP 409)."""

    status = 409
    code = "conflict"


class ActionRefused(WorkflowError):
    """The actor has no part in this action (HTTP 403)."""

    status = 403
    code = "not_allowed"


class ActionInvalid(WorkflowError):
    """The action's input is wrong: a required comment, an unknown user or step (HTTP 422)."""

    status = 422
    code = "invalid"


class FlowNotFound(WorkflowError):
    """The record does not exist, or its entity has no flow (HTTP 404)."""

    status = 404
    code = "not_found"
