"""Who is calling the API.

There is no authentication yet: every request acts as the anonymous actor. The security
stage replaces ``request_actor`` (users, tokens) and nothing else changes, since every
view asks this one function.
"""

from __future__ import annotations

from formwork.records import Actor

# The channel every API write is recorded under in the audit trail.
API_CHANNEL = "api"

ANONYMOUS = Actor(None, "anonymous")


def request_actor() -> Actor:
    """The actor of the current request: the anonymous actor until logins exist."""
    return ANONYMOUS
