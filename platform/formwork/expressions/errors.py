"""Expression errors: a stable FW-E4xx code, the column inside the expression and a hint.

The codes are documented in docs/expressions.md; never reuse one for another meaning.
"""

from __future__ import annotations

SYNTAX = "FW-E401"  # not a valid expression at all
NOT_ALLOWED = "FW-E402"  # valid Python, but a construct the language refuses
BAD_NAME = "FW-E403"  # dunder or leading-underscore names
UNKNOWN_FUNCTION = "FW-E404"  # a call of anything not in the fixed function list
TOO_COMPLEX = "FW-E405"  # longer than MAX_LENGTH or nested deeper than MAX_DEPTH
UNKNOWN_FIELD = "FW-E406"  # a field path that does not resolve against the entity
TYPE_MISMATCH = "FW-E407"  # operands whose types do not fit the operator
BAD_ARGUMENTS = "FW-E408"  # wrong number or types of function arguments
WRONG_RESULT = "FW-E409"  # the result type does not fit the place (e.g. a condition)
ROWS_MISUSE = "FW-E410"  # child-row values outside an aggregate, or a measure that does not aggregate
UNKNOWN_VARIABLE = "FW-E411"  # a $variable the place does not provide

MAX_LENGTH = 2000
MAX_DEPTH = 50


class ExpressionError(Exception):
    """A mistake in an expression; ``column`` counts characters of the expression from 1."""

    def __init__(self, code: str, message: str, column: int = 1, hint: str | None = None):
        self.code = code
        self.message = message
        self.column = column
        self.hint = hint
        text = f"[{code}] column {column}: {message}"
        super().__init__(f"{text} — {hint}" if hint else text)
