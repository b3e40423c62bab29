"""Safe evaluator for Stimela2 ``=formula`` values.

* :mod:`.values` -- ``UNSET``, the ``Missing`` marker, the error classes.
* :mod:`.parser` -- tokenizer and recursive-descent parser to a tuple AST (``parse``, cached).
* :mod:`.evaluator` -- AST evaluation (``evaluate``, ``check``, ``lookup``).
* :mod:`.functions` -- the built-in functions (IF, IFSET, CASES, TRY, GLOB, EXISTS...).
* :mod:`.lazy` -- ``LazyMapping``: values resolved on first access, with cycle detection.

Nothing is ever handed to Python's ``eval``. Import public names from this package.
"""
from __future__ import annotations

from .evaluator import check, evaluate, lookup
from .functions import FUNCTION_NAMES
from .lazy import LazyMapping
from .parser import parse
from .values import (
    UNSET,
    CircularReferenceError,
    FormulaAbort,
    FormulaError,
    FormulaSyntaxError,
    Missing,
    is_formula,
    short_repr,
    unset_if_missing,
)

__all__ = [
    "UNSET",
    "FormulaError",
    "FormulaSyntaxError",
    "FormulaAbort",
    "CircularReferenceError",
    "FUNCTION_NAMES",
    "Missing",
    "is_formula",
    "evaluate",
    "check",
    "parse",
    "lookup",
    "short_repr",
    "unset_if_missing",
    "LazyMapping",
]
