"""The security stage: users, departments, login, tokens, roles and permission evaluation.

``RolePolicy`` (policy.py) is the ``RecordPolicy`` that ``RecordService`` asks before every
read and write: actions, rows and fields come from the ``role`` objects of the metadata
(grants.py). Accounts (accounts.py) are ordinary ``user`` records plus a password hash and
role rows; logins (login.py), sessions (sessions.py) and personal tokens (tokens.py) keep
their state in the database only, and every security event lands in ``fw_security_event``
(audit.py). docs/security.md is the guide for consultants and admins.
"""

from formwork.security.accounts import AccountError, load_actor
from formwork.security.policy import RolePolicy
from formwork.security.tables import SecurityTables, add_security_tables, security_tables

__all__ = [
    "AccountError",
    "RolePolicy",
    "SecurityTables",
    "add_security_tables",
    "load_actor",
    "security_tables",
]
