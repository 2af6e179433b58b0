"""Formwork's one expression language: parse once, type check against metadata, run in Python or SQL.

``parse`` turns text into an immutable ``Expression``; ``check`` types it in a
``FieldScope`` (the entity's fields, links, child tables and $variables);
``compile_python`` and ``compile_sql`` turn it into a Python callable and a
SQLAlchemy clause that agree with each other. The language is documented for
consultants in docs/expressions.md.
"""

from formwork.expressions.checker import check, expression_problems
from formwork.expressions.errors import ExpressionError
from formwork.expressions.nodes import Expression
from formwork.expressions.parser import parse
from formwork.expressions.python import EvalContext, compile_python
from formwork.expressions.scope import FieldScope
from formwork.expressions.sql import SqlScope, compile_sql
from formwork.expressions.values import DateRange

__all__ = [
    "DateRange",
    "EvalContext",
    "Expression",
    "ExpressionError",
    "FieldScope",
    "SqlScope",
    "check",
    "compile_python",
    "compile_sql",
    "expression_problems",
    "parse",
]
