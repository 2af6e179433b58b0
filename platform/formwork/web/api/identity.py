"""Who is calling the API: the actor of ``Authorization: Bearer <token>`` or of the login
session (``formwork.web.auth.current_actor``); without either, 401."""

from __future__ import annotations

from formwork.records import Actor
from formwork.web.api.errors import refuse
from formwork.web.auth import current_actor

# The channel every API write is recorded under in the audit trail.
API_CHANNEL = "api"
UNAUTHENTICATED = "log in or send Authorization: Bearer <token>"


def request_actor() -> Actor:
    """The actor of the current request; raises a 401 ``ApiError`` (answered with
    ``WWW-Authenticate: Bearer``) when the request carries no valid credentials."""
    actor = current_actor()
    if actor is None:
        raise refuse(401, "", "unauthenticated", UNAUTHENTICATED)
    return actor
