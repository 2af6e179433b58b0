"""Errors a user can cause, as values: a stable code, the place, a message and a hint.

Every stage that reads user input (metadata files, expressions, plans) reports
``Problem`` values instead of raising tracebacks, so the CLI can print all of
them at once as ``file:line: dotted.path: [FW-Exxx] message``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    """A position in a metadata file; lines and columns count from 1."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Problem:
    """One mistake in user input, with a stable ``code`` documented in docs/errors.md."""

    code: str
    message: str
    place: Place | None = None
    path: str = ""
    hint: str | None = None

    def format(self) -> str:
        """Render as ``file:line: path: [code] message (hint)`` on one line."""
        where = str(self.place) if self.place else "<project>"
        parts = [where]
        if self.path:
            parts.append(self.path)
        text = ": ".join(parts) + f": [{self.code}] {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text

    def as_dict(self) -> dict:
        """The same problem as JSON-ready data for ``--format json``."""
        return {
            "code": self.code,
            "message": self.message,
            "file": self.place.file if self.place else None,
            "line": self.place.line if self.place else None,
            "column": self.place.column if self.place else None,
            "path": self.path,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple:
        return (
            self.place.file if self.place else "",
            self.place.line if self.place else 0,
            self.place.column if self.place else 0,
            self.code,
        )


class ProblemsFound(Exception):
    """Raised by a stage that found user mistakes; carries all of them."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(p.format() for p in self.problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest known word, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
