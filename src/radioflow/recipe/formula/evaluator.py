"""AST evaluation against a namespace of mappings (``recipe``, ``steps``, ``info``...).

Nothing is handed to Python's ``eval``: only the operators here and the functions of
:mod:`.functions` exist. Unset names evaluate to :class:`Missing`, which is an error except
where a function allows it (IFSET, TRY, VALID...).
"""
from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from radioflow.errors import RadioflowError

from .functions import ARITY, FUNCTIONS, LAZY_FUNCTIONS, unknown_function
from .parser import children, parse
from .values import (
    MAX_SEQ,
    UNSET,
    EvalFailure,
    FormulaError,
    Missing,
    short_repr,
    where_prefix,
)

# ---------------------------------------------------------------------------------------------
# namespace lookup
# ---------------------------------------------------------------------------------------------

_GLOB_CHARS = re.compile(r"[*?\[]")
_INDEXED = re.compile(r"^(.+?)\[([^\[\]]+)\]$")


def _keys(container: Any) -> list[str]:
    return [k for k in container.keys() if isinstance(k, str)]


def _step(container: Any, seg: str) -> tuple[bool, Any]:
    """One '.segment' of a dotted lookup: (found, value)."""
    if isinstance(container, Mapping):
        if seg in container:
            return True, container[seg]
        if _GLOB_CHARS.search(seg):
            names = sorted(fnmatch.filter(_keys(container), seg))
            if names:   # Stimela semantics: the last match, in sorted order
                return True, container[names[-1]]
        m = _INDEXED.match(seg)
        if m and m.group(1) in container:   # 'x[0]' followed by more segments
            base, index = container[m.group(1)], m.group(2)
            try:
                return True, base[int(index) if re.fullmatch(r"-?\d+", index) else index]
            except (IndexError, KeyError, TypeError):
                return False, None
        return False, None
    if seg.startswith("_") or isinstance(container, (str, bytes, int, float, list, tuple)):
        return False, None
    try:
        value = getattr(container, seg)
    except AttributeError:
        return False, None
    return (False, None) if callable(value) else (True, value)   # data, never methods


def lookup(ns: Mapping[str, Any], segments: tuple[str, ...] | list[str]) -> Any:
    """Walk ``segments`` through nested mappings/objects; a ``Missing`` marker if unset."""
    value: Any = ns
    for i, seg in enumerate(segments):
        found, value = _step(value, seg)
        if not found:
            path = ".".join(segments)
            if i == len(segments) - 1:
                detail = f"'{path}' is not set"
            else:
                detail = f"'{path}' is not set ('{'.'.join(segments[:i + 1])}' does not exist)"
            if any(c in seg for c in "-*"):
                detail += (f" (note: '{seg}' is read as one name; put spaces around '-' and '*'"
                           " to subtract or multiply)")
            return Missing(path, detail)
        if value is UNSET:
            return Missing(".".join(segments), f"'{'.'.join(segments[:i + 1])}' is UNSET", unset=True)
    return value


# ---------------------------------------------------------------------------------------------
# evaluator
# ---------------------------------------------------------------------------------------------

_MAX_BITS = 13_000   # about 3,900 decimal digits: every result can still be printed (str() stops at 4,300)


def _safe_pow(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(b, bool) and b > 0:
        if abs(a) > 1 and b * math.log2(abs(a)) > _MAX_BITS:
            raise EvalFailure(f"{a} ** {b} is too large")
    return a ** b


def _safe_mul(a: Any, b: Any) -> Any:
    for seq, k in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(k, int):
            if len(seq) * max(k, 0) > MAX_SEQ:
                raise EvalFailure("repeated sequence would be too long")
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > _MAX_BITS:
            raise EvalFailure("product is too large")
    return a * b


def _safe_mod(a: Any, b: Any) -> Any:
    if isinstance(a, str) and any(len(num) > 3 for num in re.findall(r"\d+", a)):
        raise EvalFailure("%-format widths above 999 are not allowed")
    return a % b


def _safe_lshift(a: Any, b: Any) -> Any:
    if isinstance(b, int) and b > _MAX_BITS:
        raise EvalFailure(f"shift by {b} bits is too large")
    return a << b


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": _safe_mul, "/": operator.truediv,
    "//": operator.floordiv, "%": _safe_mod, "**": _safe_pow,
    "<<": _safe_lshift, ">>": operator.rshift,
    "&": operator.and_, "|": operator.or_, "^": operator.xor,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}
_UNARY: dict[str, Callable[[Any], Any]] = {"-": operator.neg, "+": operator.pos,
                                           "~": operator.invert}


class Evaluator:
    def __init__(self, ns: Mapping[str, Any], text: str, where: str) -> None:
        self.ns = ns
        self.text = text
        self.where = where

    # -- helpers --------------------------------------------------------------------------
    def fail(self, message: str, cls: type[FormulaError] = FormulaError) -> FormulaError:
        return cls(f"{where_prefix(self.where)}formula '={self.text}': {message}")

    def strict(self, node: tuple) -> Any:
        value = self.eval(node)
        if isinstance(value, Missing):
            raise self.fail(value.detail)
        return value

    def loose(self, node: tuple) -> Any:
        """Evaluate where an unset name is allowed (IFSET, VALID, TRY, ...)."""
        return self.eval(node)

    def substitute(self, text: str) -> Any:
        if "{" not in text and "}" not in text:
            return text
        from radioflow.recipe.substitute import substitute  # circular import: late binding

        return substitute(text, self.ns, where=self.where)

    # -- dispatch -------------------------------------------------------------------------
    def eval(self, node: tuple) -> Any:
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "str" or kind == "raw":
            return self.substitute(node[1])
        if kind == "name":
            return lookup(self.ns, node[1])
        if kind == "rawname":
            if isinstance(self.ns, Mapping) and node[1][0] in self.ns:
                return lookup(self.ns, node[1])
            return node[2]
        if kind == "unset":
            return UNSET
        if kind == "self":
            value = lookup(self.ns, ("self",))
            if isinstance(value, Missing):
                raise self.fail("SELF has no value here (it refers to the parameter's own value)")
            return value
        if kind == "list":
            return [self.strict(item) for item in node[1]]
        if kind == "index":
            base, index = self.strict(node[1]), self.strict(node[2])
            try:
                return base[index]
            except (IndexError, KeyError) as exc:
                raise self.fail(f"index {index!r} not found in {short_repr(base)} ({exc!r})") from None
            except TypeError as exc:
                raise self.fail(f"cannot index {short_repr(base)} with {index!r}: {exc}") from None
        if kind == "unary":
            arg = self.strict(node[2])
            return self.apply(_UNARY[node[1]], node[1], (arg,))
        if kind == "not":
            return not self.loose(node[1])
        if kind == "bin":
            a, b = self.strict(node[2]), self.strict(node[3])
            return self.apply(_BINARY[node[1]], node[1], (a, b))
        if kind == "cmp":
            return self.compare(node)
        if kind == "and":
            a = self.strict(node[1])
            return self.strict(node[2]) if self.truth(a) else a
        if kind == "or":
            a = self.strict(node[1])
            return a if self.truth(a) else self.strict(node[2])
        if kind == "call":
            return self.call(node)
        raise self.fail(f"internal: unknown node {kind!r}")

    def truth(self, value: Any) -> bool:
        try:
            return bool(value)
        except Exception as exc:   # e.g. numpy arrays: ambiguous truth value
            raise self.fail(f"cannot use {short_repr(value)} as a condition: {exc}") from None

    def apply(self, fn: Callable[..., Any], op: str, args: tuple) -> Any:
        try:
            return fn(*args)
        except EvalFailure as exc:
            raise self.fail(str(exc)) from None
        except (TypeError, ValueError, ArithmeticError, KeyError, IndexError,
                AttributeError, MemoryError) as exc:
            operands = " and ".join(short_repr(a) for a in args)
            raise self.fail(f"operator '{op}' failed on {operands}: "
                            f"{type(exc).__name__}: {exc}") from None

    def compare(self, node: tuple) -> Any:
        _, operands, ops, _ = node
        left = self.strict(operands[0])
        for op, operand in zip(ops, operands[1:]):
            right = self.strict(operand)
            result = self.apply(_COMPARE[op], op, (left, right))
            if not self.truth(result):
                return result
            left = right
        return result

    # -- functions ------------------------------------------------------------------------
    def call(self, node: tuple) -> Any:
        _, fname, args, _ = node
        lazy = LAZY_FUNCTIONS.get(fname)
        if lazy is not None:
            return lazy(self, args)
        spec = FUNCTIONS.get(fname)
        if spec is None:
            raise self.fail(unknown_function(fname))
        fn, lo, hi = spec
        self.check_arity(fname, args, lo, hi)
        values = [self.strict(a) for a in args]
        try:
            return fn(*values)
        except EvalFailure as exc:
            raise self.fail(f"{fname}(): {exc}") from None
        except (TypeError, ValueError, ArithmeticError, KeyError, IndexError,
                AttributeError, OSError, MemoryError) as exc:
            raise self.fail(f"{fname}() failed: {type(exc).__name__}: {exc}") from None

    def check_arity(self, fname: str, args: tuple, lo: int, hi: int | None) -> None:
        n = len(args)
        if n < lo or (hi is not None and n > hi):
            if hi is None:
                expected = f"at least {lo}"
            elif lo == hi:
                expected = f"{lo}"
            else:
                expected = f"{lo} to {hi}"
            plural = "" if expected == "1" else "s"
            raise self.fail(f"{fname}() expects {expected} argument{plural}, got {n}")


def check(expr: str, *, where: str = "") -> None:
    """Prevalidate a formula without evaluating it: syntax, function names and arities.

    Lets a loader report every bad formula (with file:line) before any step runs, including
    ones in branches that would not be taken.
    """
    node = parse(expr, where=where)
    stack = [node]
    while stack:
        current = stack.pop()
        if current[0] == "call":
            _, fname, args, _ = current
            ev = Evaluator({}, expr, where)
            if fname not in ARITY:
                raise ev.fail(unknown_function(fname))
            ev.check_arity(fname, args, *ARITY[fname])
        stack.extend(children(current))


def evaluate(expr: str, ns: Mapping[str, Any], *, where: str = "") -> Any:
    """Evaluate formula ``expr`` (the text after the leading '=') in namespace ``ns``.

    Returns the value; ``=UNSET`` (or a function such as IFSET() that yields it) returns
    ``UNSET``, which callers treat as "no value" (revert to default). A formula that is, or
    yields, a name that does not exist (``=steps.s1.nonexistent``) is an error, as in Stimela.
    Any problem raises FormulaError naming ``where`` (e.g. "recipe.yml:12").
    """
    if not isinstance(expr, str):
        raise FormulaError(f"{where_prefix(where)}a formula must be a string, got {short_repr(expr)}")
    node = parse(expr, where=where)
    ev = Evaluator(ns, expr, where)
    try:
        value = ev.eval(node)
    except RadioflowError:
        raise
    except RecursionError:
        raise ev.fail("formula or the values it refers to are nested too deeply") from None
    except Exception as exc:   # anything a value's own methods may raise: report, no traceback
        raise ev.fail(f"{type(exc).__name__}: {exc}") from None
    if isinstance(value, Missing):
        if value.unset:
            return UNSET
        raise ev.fail(f"unresolved: {value.detail} (use IFSET() for a value that may be unset)")
    return value
