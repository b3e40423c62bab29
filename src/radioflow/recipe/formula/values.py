"""Values and errors shared by the formula parser, evaluator and lazy mapping.

``UNSET`` (the "no value" keyword), the :class:`Missing` marker for an unset name, the
formula error classes, and small helpers for error messages.
"""
from __future__ import annotations

from typing import Any

from radioflow.errors import ValidationError


class _Unset:
    """The UNSET keyword: a falsy singleton meaning "no value" (revert to default / drop)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"

    def __reduce__(self) -> str:
        return "UNSET"


UNSET = _Unset()


class FormulaError(ValidationError):
    """A formula or substitution that cannot be parsed or evaluated."""


class FormulaSyntaxError(FormulaError):
    """A formula that does not parse."""


class FormulaAbort(FormulaError):
    """Raised by ``ERROR()`` / ``ABORT()`` in a formula: a deliberate, user-written failure."""


class CircularReferenceError(FormulaError):
    """A value whose resolution needs itself (``recipe.a -> recipe.b -> recipe.a``)."""


# errors that TRY()/VALID() must never swallow: they point at a real mistake in the recipe
UNCATCHABLE = (FormulaSyntaxError, FormulaAbort, CircularReferenceError)


def is_formula(value: Any) -> bool:
    """True for a string formula ``=...`` (``==...`` is the escape for a literal ``=...``)."""
    return isinstance(value, str) and value.startswith("=") and not value.startswith("==")


def where_prefix(where: str) -> str:
    """``"file:line: "`` before a message, or nothing without a location."""
    return f"{where}: " if where else ""


class Missing:
    """Result of looking up a name that is not set; UNSET where allowed, an error elsewhere."""

    __slots__ = ("name", "detail", "unset")

    def __init__(self, name: str, detail: str, unset: bool = False) -> None:
        # unset: the name exists with the value UNSET (a formula yielding it reverts to the default);
        # otherwise the name does not exist (a formula yielding it is unresolved, an error)
        self.name, self.detail, self.unset = name, detail, unset

    def __bool__(self) -> bool:
        return False


class EvalFailure(Exception):
    """Internal: an evaluation problem to be reported as FormulaError with context."""


MAX_SEQ = 1_000_000


def short_repr(value: Any) -> str:
    """Type and a truncated repr of a value, for error messages (never raises)."""
    try:
        text = repr(value)
    except Exception:
        return type(value).__name__
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def unset_if_missing(value: Any) -> Any:
    """UNSET for a Missing marker, else the value unchanged."""
    return UNSET if isinstance(value, Missing) else value
