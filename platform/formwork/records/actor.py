"""Who is writing: every call to ``RecordService`` carries an ``Actor``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """The user behind a call. ``user_id`` is None for the system (seed, CLI, timers)."""

    user_id: int | None
    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    department_id: int | None = None
    is_admin: bool = False

    @classmethod
    def system(cls) -> Actor:
        """The actor of seed data, CLI commands and background jobs: no user, full rights."""
        return cls(user_id=None, username="system", roles=frozenset(), department_id=None, is_admin=True)

    def as_expression_user(self) -> dict[str, Any]:
        """The actor as ``$user`` inside expressions (``$user.department`` is the department id)."""
        return {
            "id": self.user_id,
            "username": self.username,
            "department": self.department_id,
            "roles": sorted(self.roles),
            "is_admin": self.is_admin,
        }
