"""Opaque, signed keyset cursors for list pages.

A cursor carries the sort order it was made for and the sort-key values (id last) of the
last record of a page. It is signed with the deployment's secret key, so a client cannot
forge one, and a cursor used with another sort order is refused.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "formwork.api.cursor"


class BadCursor(ValueError):
    """The cursor was not made by this deployment, or not for this sort order."""


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class Cursors:
    """Makes and reads cursors with the deployment's ``secret``."""

    def __init__(self, secret: str):
        self._serializer = URLSafeSerializer(secret, salt=SALT)

    def make(self, sort: tuple[str, ...], position: tuple[Any, ...]) -> str:
        """The cursor of the page after ``position`` under ``sort``."""
        return str(self._serializer.dumps({"s": list(sort), "k": [_plain(v) for v in position]}))

    def read(self, cursor: str, sort: tuple[str, ...]) -> tuple[Any, ...]:
        """The position ``cursor`` stands for (values as text; the listing converts them);
        ``BadCursor`` when it is forged, damaged or made for another sort order."""
        try:
            payload = self._serializer.loads(cursor)
        except BadSignature:
            raise BadCursor("is not a cursor of this API (take next_cursor from a list response)") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("k"), list):
            raise BadCursor("is not a cursor of this API (take next_cursor from a list response)")
        if payload.get("s") != list(sort):
            raise BadCursor("was made for another sort order; send the same sort as the first page")
        return tuple(payload["k"])
