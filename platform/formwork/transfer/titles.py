"""Records named by their title: how a file refers to a linked record.

A link cell holds the title of the target record (a user's ``username``, a department's
``name``, else the target entity's ``title_field``) or its integer id. Titles are looked
up in batches (one query per target entity and batch of rows) and remembered in a
bounded cache, so an import of many rows neither queries once per row nor keeps every
title of a large table in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formwork.metadata.model import App, naming_field
from formwork.problems import did_you_mean
from formwork.records import Actor, RecordPolicy
from formwork.records.coerce import WrongType, coerce_value

# Titles remembered across batches (per resolver); the oldest are forgotten first.
CACHE_SIZE = 50_000
# Titles of a target read to suggest a close one for a title that names no record.
SUGGESTION_POOL = 2000
# Values per IN (...) list: well under every engine's bound-parameter limit.
CHUNK = 500


@dataclass(frozen=True)
class Found:
    """A title's match: ``ids`` of the records carrying it (none, one, or several)."""

    ids: tuple[int, ...]


class TitleResolver:
    """Title -> record id of link targets, as ``actor`` may see them (the policy's row filter)."""

    def __init__(self, app: App, tables: dict[str, sa.Table] | Any, policy: RecordPolicy, actor: Actor, cache_size: int = CACHE_SIZE):
        self.app = app
        self.tables = tables
        self.policy = policy
        self.actor = actor
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], Found] = OrderedDict()
        self._pools: dict[str, list[str]] = {}

    def prefetch(self, conn: sa.Connection, target: str, titles: Iterable[str]) -> None:
        """Look up every title of ``titles`` not yet known, in a few queries."""
        wanted = sorted({t for t in titles if (target, t) not in self._cache})
        key = naming_field(self.app.entity(target))
        if not wanted:
            return
        if key is None:
            for title in wanted:
                self._remember(target, title, Found(()))
            return
        entity = self.app.entity(target)
        table = self.tables[target]
        typed: dict[Any, str] = {}
        for title in wanted:
            try:
                value = coerce_value(entity.fields[key], title)
            except WrongType:
                value = None
            if value is not None:
                typed[value] = title
        matches: dict[str, list[int]] = {t: [] for t in wanted}
        limit = self.policy.row_filter(target, self.actor, table)
        values = list(typed)
        for start in range(0, len(values), CHUNK):
            chunk = values[start : start + CHUNK]
            query = sa.select(table.c.id, table.c[key]).where(table.c[key].in_(chunk))
            if limit is not None:
                query = query.where(limit)
            for record_id, title_value in conn.execute(query):
                title = typed.get(title_value)
                if title is not None:
                    matches[title].append(record_id)
        for title, ids in matches.items():
            self._remember(target, title, Found(tuple(sorted(ids))))

    def found(self, target: str, title: str) -> Found:
        """The match of a prefetched title."""
        return self._cache[(target, title)]

    def suggestion(self, conn: sa.Connection, target: str, title: str) -> str | None:
        """A "did you mean" hint naming a close title of ``target`` (from its first
        ``SUGGESTION_POOL`` records), or None."""
        key = naming_field(self.app.entity(target))
        if key is None:
            return None
        if target not in self._pools:
            table = self.tables[target]
            query = sa.select(table.c[key]).where(table.c[key].is_not(None)).order_by(table.c.id).limit(SUGGESTION_POOL)
            limit = self.policy.row_filter(target, self.actor, table)
            if limit is not None:
                query = query.where(limit)
            self._pools[target] = [str(v) for v in conn.execute(query).scalars()]
        return did_you_mean(title, self._pools[target])

    def forget_missing(self, target: str) -> None:
        """Forget the titles of ``target`` that named no record: the import may have created them since."""
        for key in [k for k, found in self._cache.items() if k[0] == target and not found.ids]:
            del self._cache[key]
        self._pools.pop(target, None)

    def _remember(self, target: str, title: str, found: Found) -> None:
        self._cache[(target, title)] = found
        self._cache.move_to_end((target, title))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
