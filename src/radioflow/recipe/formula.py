"""Safe evaluator for Stimela2 ``=formula`` values.

A hand-written tokenizer and recursive-descent parser turn the formula text into a small
tuple-based AST (cached per formula string); an evaluator walks it against a namespace of
mappings (``recipe``, ``steps``, ``info``, ``config``...). Nothing is ever handed to Python's
``eval``: only the operators and functions listed here exist.
"""
from __future__ import annotations

import difflib
import fnmatch
import glob
import logging
import math
import operator
import os.path
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from radioflow.errors import RadioflowError, ValidationError

__all__ = [
    "UNSET",
    "FormulaError",
    "FormulaSyntaxError",
    "FormulaAbort",
    "CircularReferenceError",
    "is_formula",
    "evaluate",
    "check",
    "parse",
    "lookup",
    "LazyMapping",
]

log = logging.getLogger("radioflow.recipe.formula")


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
_UNCATCHABLE = (FormulaSyntaxError, FormulaAbort, CircularReferenceError)


def is_formula(value: Any) -> bool:
    """True for a string formula ``=...`` (``==...`` is the escape for a literal ``=...``)."""
    return isinstance(value, str) and value.startswith("=") and not value.startswith("==")


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


# ---------------------------------------------------------------------------------------------
# tokenizer
# ---------------------------------------------------------------------------------------------

_DIGITS = frozenset("0123456789")
_NUMBER = re.compile(r"(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a dotted-name segment after the first '.': Stimela allows '-', '@' and the wildcards '*'
# and '?' inside names; '[..]' character classes are kept when followed by more of the name
_BRACKET = r"\[[^\[\]\s,]+\](?=[.A-Za-z0-9_*?@\-])"
_SEGMENT = re.compile(rf"(?:[A-Za-z_*?]|{_BRACKET})(?:[A-Za-z0-9_*?@\-]|{_BRACKET})*")
_OPERATORS = ("**", "//", "==", "!=", "<=", ">=", "<<", ">>",
              "+", "-", "*", "/", "%", "<", ">", "(", ")", "[", "]", ",", "~", "&", "|", "^")
_OPERATOR_RE = re.compile("|".join(re.escape(op) for op in _OPERATORS))   # longest first
_WORD_OPS = {"and", "or", "not", "in"}

# token: (kind, value, column) with kind in NUM STR NAME OP END
Token = tuple[str, Any, int]


class _ParseFailure(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message, self.pos = message, pos


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        if ch.isspace():
            pos += 1
            continue
        if ch in _DIGITS or (ch == "." and pos + 1 < n and text[pos + 1] in _DIGITS):
            m = _NUMBER.match(text, pos)
            assert m is not None
            s = m.group()
            try:
                value: Any = float(s) if any(c in s for c in ".eE") else int(s)
            except ValueError:
                raise _ParseFailure(f"number {s[:20]}... is too long", pos) from None
            tokens.append(("NUM", value, pos))
            pos = m.end()
            continue
        if ch in "'\"":
            end = text.find(ch, pos + 1)
            if end < 0:
                raise _ParseFailure("unterminated string (no closing quote)", pos)
            tokens.append(("STR", text[pos + 1:end], pos))
            pos = end + 1
            continue
        m = _IDENT.match(text, pos)
        if m:
            segments = [m.group()]
            pos = m.end()
            while pos < n and text[pos] == ".":
                sm = _SEGMENT.match(text, pos + 1)
                if not sm:
                    raise _ParseFailure("expected a name after '.'", pos + 1)
                segments.append(sm.group())
                pos = sm.end()
            tokens.append(("NAME", tuple(segments), m.start()))
            if len(segments) == 1 and segments[0] in _RAW_ARG_FUNCS:
                paren = pos
                while paren < n and text[paren].isspace():
                    paren += 1
                if paren < n and text[paren] == "(":
                    raw = _raw_argument(text, paren + 1)
                    if raw is not None:
                        tokens.append(("OP", "(", paren))
                        tokens.append(("RAW", raw[0], paren + 1))
                        pos = raw[1]
            continue
        om = _OPERATOR_RE.match(text, pos)
        if om:
            tokens.append(("OP", om.group(), pos))
            pos = om.end()
        else:
            hint = " (use '==' to compare)" if ch == "=" else ""
            raise _ParseFailure(f"unexpected character {ch!r}{hint}", pos)
    tokens.append(("END", None, n))
    return tokens


# ---------------------------------------------------------------------------------------------
# parser: tuple AST
#   ("const", v) ("str", s) ("raw", s) ("rawname", segments, s) ("unset",) ("self",)
#   ("name", segments, pos)
#   ("list", items) ("index", base, idx, pos) ("unary", op, x, pos) ("not", x)
#   ("bin", op, a, b, pos) ("cmp", operands, ops, pos) ("and", a, b) ("or", a, b)
#   ("call", fname, args, pos)
# ---------------------------------------------------------------------------------------------

_MAX_DEPTH = 100
_BINARY_PREC = {"|": 1, "^": 2, "&": 3, "<<": 4, ">>": 4, "+": 5, "-": 5,
                "*": 6, "/": 6, "//": 6, "%": 6}

# functions whose single argument may be unquoted text (Stimela: GLOB(*.ms), ERROR(bad value))
_RAW_ARG_FUNCS = {"GLOB", "EXISTS", "ERROR", "ABORT"}
_RAW_ARG = re.compile(r"[^,)]*")


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # token helpers (the parser never moves past the END token, so peek() needs no bound)
    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_op(self, *ops: str) -> bool:
        tok = self.tokens[self.i]
        return tok[0] == "OP" and tok[1] in ops

    def at_word(self, word: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return tok[0] == "NAME" and len(tok[1]) == 1 and tok[1][0].lower() == word

    def expect_op(self, op: str, what: str) -> None:
        if not self.at_op(op):
            raise _ParseFailure(f"expected '{op}' {what}, found {self.describe(self.peek())}",
                                self.peek()[2])
        self.next()

    @staticmethod
    def describe(tok: Token) -> str:
        kind, value, _ = tok
        if kind == "END":
            return "the end of the formula"
        if kind == "NAME":
            return f"'{'.'.join(value)}'"
        if kind == "STR":
            return f"string {value!r}"
        return f"'{value}'"

    # grammar
    def parse(self) -> tuple:
        node = self.expr()
        if self.peek()[0] != "END":
            tok = self.peek()
            raise _ParseFailure(f"unexpected {self.describe(tok)} after a complete expression",
                                tok[2])
        return node

    def expr(self) -> tuple:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _ParseFailure("formula is nested too deeply", self.peek()[2])
        try:
            return self.or_expr()
        finally:
            self.depth -= 1

    def or_expr(self) -> tuple:
        node = self.and_expr()
        while self.at_word("or"):
            self.next()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> tuple:
        node = self.not_expr()
        while self.at_word("and"):
            self.next()
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> tuple:
        if self.at_word("not"):
            self.next()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _ParseFailure("formula is nested too deeply", self.peek()[2])
            try:
                return ("not", self.not_expr())
            finally:
                self.depth -= 1
        return self.comparison()

    _CMP = ("==", "!=", "<", "<=", ">", ">=")

    def comparison(self) -> tuple:
        pos = self.peek()[2]
        first = self.binary()
        kind = self.tokens[self.i][0]
        if kind != "OP" and kind != "NAME":
            return first
        operands, ops = [first], []
        while True:
            if self.at_op(*self._CMP):
                ops.append(self.next()[1])
            elif self.at_word("in"):
                self.next()
                ops.append("in")
            elif self.at_word("not") and self.at_word("in", 1):
                self.next()
                self.next()
                ops.append("not in")
            else:
                break
            operands.append(self.binary())
        if not ops:
            return first
        return ("cmp", tuple(operands), tuple(ops), pos)

    def binary(self, min_prec: int = 1) -> tuple:
        """Arithmetic and bitwise operators by precedence climbing (all left-associative)."""
        left = self.unary()
        while True:
            kind, op, pos = self.peek()
            prec = _BINARY_PREC.get(op) if kind == "OP" else None
            if prec is None or prec < min_prec:
                return left
            self.next()
            left = ("bin", op, left, self.binary(prec + 1), pos)

    def unary(self) -> tuple:
        if self.at_op("-", "+", "~"):
            _, op, pos = self.next()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise _ParseFailure("formula is nested too deeply", pos)
            try:
                return ("unary", op, self.unary(), pos)
            finally:
                self.depth -= 1
        return self.power()

    def power(self) -> tuple:
        base = self.postfix()
        if self.at_op("**"):
            _, _, pos = self.next()
            return ("bin", "**", base, self.unary(), pos)   # right-associative, like Python
        return base

    def postfix(self) -> tuple:
        node = self.primary()
        while self.at_op("["):
            _, _, pos = self.next()
            index = self.expr()
            self.expect_op("]", "to close the index")
            node = ("index", node, index, pos)
        return node

    def primary(self) -> tuple:
        kind, value, pos = self.peek()
        if kind == "NUM":
            self.next()
            return ("const", value)
        if kind == "STR":
            self.next()
            return ("str", value)
        if kind == "OP" and value == "(":
            self.next()
            node = self.expr()
            self.expect_op(")", "to close the parenthesis")
            return node
        if kind == "OP" and value == "[":
            self.next()
            items = self.arguments("]")
            return ("list", tuple(items))
        if kind == "NAME":
            self.next()
            if len(value) == 1:
                word = value[0]
                if self.at_op("("):
                    return self.call(word, pos)
                if word in ("True", "true"):
                    return ("const", True)
                if word in ("False", "false"):
                    return ("const", False)
                if word == "UNSET":
                    return ("unset",)
                if word == "EMPTY":
                    return ("const", "")
                if word == "SELF":
                    return ("self",)
                if word.lower() in _WORD_OPS:
                    raise _ParseFailure(f"unexpected '{word}' where a value was expected", pos)
            return ("name", value, pos)
        raise _ParseFailure(f"expected a value, found {self.describe(self.peek())}", pos)

    def arguments(self, closer: str) -> list[tuple]:
        items: list[tuple] = []
        if self.at_op(closer):
            self.next()
            return items
        while True:
            items.append(self.expr())
            if self.at_op(","):
                self.next()
                continue
            self.expect_op(closer, "or ',' in the list of arguments" if closer == ")"
                           else "or ',' in the list")
            return items

    def call(self, fname: str, pos: int) -> tuple:
        self.next()   # '('
        if self.peek()[0] == "RAW":
            raw = self.next()[1]
            self.expect_op(")", f"to close {fname}(")
            return ("call", fname, (raw,), pos)
        return ("call", fname, tuple(self.arguments(")")), pos)


def _children(node: tuple) -> tuple:
    kind = node[0]
    if kind in ("list", "cmp"):
        return node[1]
    if kind in ("index", "and", "or"):
        return (node[1], node[2])
    if kind == "not":
        return (node[1],)
    if kind == "unary":
        return (node[2],)
    if kind == "bin":
        return (node[2], node[3])
    if kind == "call":
        return node[2]
    return ()


def _has_bare_name(node: tuple) -> bool:
    if node[0] == "name":
        return len(node[1]) == 1
    return any(_has_bare_name(child) for child in _children(node))


def _argument_end(text: str, start: int) -> int:
    """End of the argument starting at ``start``: the first ',' or ')' outside parentheses,
    brackets and quotes; without a balanced one, the first ',' or ')' at all (Stimela)."""
    depth, i, n = 0, start, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            close = text.find(ch, i + 1)
            if close < 0:
                break
            i = close
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                return i if ch == ")" else -1
            depth -= 1
        elif ch == "," and depth == 0:
            return i
        i += 1
    m = _RAW_ARG.match(text, start)
    assert m is not None
    return m.end()


def _raw_argument(text: str, start: int) -> tuple[tuple, int] | None:
    """Stimela lets GLOB/EXISTS/ERROR/ABORT take unquoted text: ``GLOB(*.ms)``.

    ``start`` is just after the '('. The single argument is taken literally (returned as an
    AST node with the position of its closing ')') unless it is a genuine expression, i.e.
    one that parses without bare (undotted) names. A lone dotted name such as ``a.ms``
    becomes a "rawname": a lookup if its first part is a namespace, else text.
    """
    end = _argument_end(text, start)
    if end < 0 or end >= len(text) or text[end] != ")":
        return None
    raw = text[start:end]
    if not raw.strip():
        return None
    try:
        node = _parse_uncached(raw)
    except (_ParseFailure, RecursionError):
        node = None
    if node is not None and node[0] == "name":
        return ("rawname", node[1], raw.strip()), end   # 'EXISTS(a.ms)': decided at run time
    if node is not None and not _has_bare_name(node):
        return None
    return ("raw", raw.strip()), end


def _parse_uncached(text: str) -> tuple:
    parser = _Parser(text, _tokenize(text))
    return parser.parse()


@lru_cache(maxsize=8192)
def _parse_cached(text: str) -> tuple:
    """Parse ``text``; failures are cached too, as ("error", message, column)."""
    try:
        return _parse_uncached(text)
    except _ParseFailure as exc:
        return ("error", exc.message, exc.pos)
    except RecursionError:
        return ("error", "formula is nested too deeply", 0)


def parse(text: str, *, where: str = "") -> tuple:
    """Parse formula text (without the leading '=') to its AST, raising FormulaSyntaxError."""
    node = _parse_cached(text)
    if node[0] == "error":
        _, message, pos = node
        caret = " " * (pos + 1) + "^"
        raise FormulaSyntaxError(
            f"{_prefix(where)}syntax error in formula at column {pos + 2}: {message}\n"
            f"    ={text}\n    {caret}")
    return node


# ---------------------------------------------------------------------------------------------
# namespace lookup
# ---------------------------------------------------------------------------------------------

class _Missing:
    """Result of looking up a name that is not set; UNSET where allowed, an error elsewhere."""

    __slots__ = ("name", "detail")

    def __init__(self, name: str, detail: str) -> None:
        self.name, self.detail = name, detail

    def __bool__(self) -> bool:
        return False


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
    """Walk ``segments`` through nested mappings/objects; a ``_Missing`` marker if unset."""
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
            return _Missing(path, detail)
        if value is UNSET:
            return _Missing(".".join(segments), f"'{'.'.join(segments[:i + 1])}' is UNSET")
    return value


# ---------------------------------------------------------------------------------------------
# evaluator
# ---------------------------------------------------------------------------------------------

class _EvalFailure(Exception):
    """Internal: an evaluation problem to be reported as FormulaError with context."""


_MAX_SEQ = 1_000_000
_MAX_BITS = 1_000_000


def _safe_pow(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(b, bool) and b > 0:
        if abs(a) > 1 and b * math.log2(abs(a)) > _MAX_BITS:
            raise _EvalFailure(f"{a} ** {b} is too large")
    return a ** b


def _safe_mul(a: Any, b: Any) -> Any:
    for seq, k in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(k, int):
            if len(seq) * max(k, 0) > _MAX_SEQ:
                raise _EvalFailure("repeated sequence would be too long")
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > _MAX_BITS:
            raise _EvalFailure("product is too large")
    return a * b


def _safe_mod(a: Any, b: Any) -> Any:
    if isinstance(a, str) and any(len(num) > 3 for num in re.findall(r"\d+", a)):
        raise _EvalFailure("%-format widths above 999 are not allowed")
    return a % b


def _safe_lshift(a: Any, b: Any) -> Any:
    if isinstance(b, int) and b > _MAX_BITS:
        raise _EvalFailure(f"shift by {b} bits is too large")
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


class _Evaluator:
    def __init__(self, ns: Mapping[str, Any], text: str, where: str) -> None:
        self.ns = ns
        self.text = text
        self.where = where

    # -- helpers --------------------------------------------------------------------------
    def fail(self, message: str, cls: type[FormulaError] = FormulaError) -> FormulaError:
        return cls(f"{_prefix(self.where)}formula '={self.text}': {message}")

    def strict(self, node: tuple) -> Any:
        value = self.eval(node)
        if isinstance(value, _Missing):
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
            if isinstance(value, _Missing):
                raise self.fail("SELF has no value here (it refers to the parameter's own value)")
            return value
        if kind == "list":
            return [self.strict(item) for item in node[1]]
        if kind == "index":
            base, index = self.strict(node[1]), self.strict(node[2])
            try:
                return base[index]
            except (IndexError, KeyError) as exc:
                raise self.fail(f"index {index!r} not found in {_short(base)} ({exc!r})") from None
            except TypeError as exc:
                raise self.fail(f"cannot index {_short(base)} with {index!r}: {exc}") from None
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
            raise self.fail(f"cannot use {_short(value)} as a condition: {exc}") from None

    def apply(self, fn: Callable[..., Any], op: str, args: tuple) -> Any:
        try:
            return fn(*args)
        except _EvalFailure as exc:
            raise self.fail(str(exc)) from None
        except (TypeError, ValueError, ArithmeticError, KeyError, IndexError,
                AttributeError, MemoryError) as exc:
            operands = " and ".join(_short(a) for a in args)
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
        lazy = _LAZY_FUNCTIONS.get(fname)
        if lazy is not None:
            return lazy(self, args)
        spec = _FUNCTIONS.get(fname)
        if spec is None:
            raise self.fail(_unknown_function(fname))
        fn, lo, hi = spec
        self.check_arity(fname, args, lo, hi)
        values = [self.strict(a) for a in args]
        try:
            return fn(*values)
        except _EvalFailure as exc:
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


def _short(value: Any) -> str:
    """Type and a truncated repr of a value, for error messages (never raises)."""
    try:
        text = repr(value)
    except Exception:
        return type(value).__name__
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


# lazy functions: receive the evaluator and the unevaluated argument nodes ---------------------

def _fn_if(ev: _Evaluator, args: tuple) -> Any:
    ev.check_arity("IF", args, 3, 4)
    cond = ev.loose(args[0])
    if isinstance(cond, _Missing):
        return ev.strict(args[3]) if len(args) == 4 else UNSET
    return ev.strict(args[1] if ev.truth(cond) else args[2])


def _fn_ifset(ev: _Evaluator, args: tuple) -> Any:
    ev.check_arity("IFSET", args, 1, 3)
    value = ev.loose(args[0])
    if isinstance(value, _Missing) or value is UNSET:
        return ev.strict(args[2]) if len(args) == 3 else UNSET
    if len(args) == 1 or args[1] == ("self",):
        return value
    return ev.strict(args[1])


def _fn_cases(ev: _Evaluator, args: tuple) -> Any:
    ev.check_arity("CASES", args, 2, None)
    pairs, default = (args[:-1], args[-1]) if len(args) % 2 else (args, None)
    for i in range(0, len(pairs), 2):
        if ev.truth(ev.strict(pairs[i])):
            return _unset_if_missing(ev.loose(pairs[i + 1]))
    if default is None:
        return UNSET
    return _unset_if_missing(ev.loose(default))


def _unset_if_missing(value: Any) -> Any:
    return UNSET if isinstance(value, _Missing) else value


def _fn_try(ev: _Evaluator, args: tuple) -> Any:
    ev.check_arity("TRY", args, 1, None)
    result: Any = UNSET
    for arg in args:
        try:
            result = ev.loose(arg)
        except _UNCATCHABLE:
            raise
        except FormulaError:
            result = UNSET
            continue
        if not isinstance(result, _Missing) and result is not UNSET:
            return result
    return _unset_if_missing(result)


def _fn_valid(ev: _Evaluator, args: tuple) -> Any:
    ev.check_arity("VALID", args, 1, 1)
    try:
        value = ev.loose(args[0])
    except _UNCATCHABLE:
        raise
    except FormulaError:
        return False
    if isinstance(value, _Missing) or value is UNSET:
        return False
    return value


def _fn_nosubst(ev: _Evaluator, args: tuple) -> Any:
    ev.check_arity("NOSUBST", args, 1, 1)
    if args[0][0] in ("str", "raw"):
        return args[0][1]
    return ev.strict(args[0])


def _make_abort(fname: str) -> Callable[[_Evaluator, tuple], Any]:
    def abort(ev: _Evaluator, args: tuple) -> Any:
        ev.check_arity(fname, args, 0, 1)
        message = _unset_if_missing(ev.loose(args[0])) if args else ""
        raise ev.fail(f"{fname}: {message}", FormulaAbort)
    return abort


_LAZY_FUNCTIONS: dict[str, Callable[[_Evaluator, tuple], Any]] = {
    "IF": _fn_if, "IFSET": _fn_ifset, "CASES": _fn_cases, "TRY": _fn_try,
    "VALID": _fn_valid, "NOSUBST": _fn_nosubst,
    "ERROR": _make_abort("ERROR"), "ABORT": _make_abort("ABORT"),
}


# eager functions: receive evaluated values --------------------------------------------------

def _need_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _EvalFailure(f"expects a string, got {_short(value)}")
    return value


def _need_list(value: Any) -> list | tuple:
    if not isinstance(value, (list, tuple)):
        raise _EvalFailure(f"expects a list, got {_short(value)}")
    return value


def _fn_range(*args: Any) -> list:
    if not all(isinstance(a, int) for a in args):
        raise _EvalFailure("expects integer arguments")
    r = range(*args)
    if len(r) > _MAX_SEQ:
        raise _EvalFailure("range is too long")
    return list(r)


def _fn_minmax(fn: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        if len(args) == 1:
            if not isinstance(args[0], (list, tuple)) or not args[0]:
                raise _EvalFailure(f"needs a non-empty list or several values, "
                                   f"got {_short(args[0])}")
            return fn(args[0])
        return fn(args)
    return apply


def _path_fn(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return fn(_need_str(value))
    return apply


def _make_log(level: int) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        log.log(level, " ".join(str(a) for a in args))
        return args[-1] if args else ""
    return apply


def _is_num(x: Any) -> bool:
    return isinstance(x, (bool, int, float, complex))


_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "LIST": (lambda *a: list(a), 0, None),
    "LEN": (len, 1, 1),
    "RANGE": (_fn_range, 1, 3),
    "MIN": (_fn_minmax(min), 1, None),
    "MAX": (_fn_minmax(max), 1, None),
    "GETITEM": (lambda x, i: x[i], 2, 2),
    "SORT": (lambda x: sorted(_need_list(x)), 1, 1),
    "RSORT": (lambda x: sorted(_need_list(x), reverse=True), 1, 1),
    "IS_STR": (lambda x: type(x) is str, 1, 1),
    "IS_NUM": (_is_num, 1, 1),
    "GLOB": (_path_fn(lambda p: sorted(glob.glob(p))), 1, 1),
    "EXISTS": (_path_fn(lambda p: bool(glob.glob(p))), 1, 1),
    "DIRNAME": (_path_fn(os.path.dirname), 1, 1),
    "BASENAME": (_path_fn(os.path.basename), 1, 1),
    "EXTENSION": (_path_fn(lambda p: os.path.splitext(p)[1]), 1, 1),
    "STRIPEXT": (_path_fn(lambda p: os.path.splitext(p)[0]), 1, 1),
    "LOG": (_make_log(logging.INFO), 0, None),
    "LOGINFO": (_make_log(logging.INFO), 0, None),
    "LOGDEBUG": (_make_log(logging.DEBUG), 0, None),
    "LOGWARN": (_make_log(logging.WARNING), 0, None),
    "LOGWARNING": (_make_log(logging.WARNING), 0, None),
    "LOGERROR": (_make_log(logging.ERROR), 0, None),
}

FUNCTION_NAMES: frozenset[str] = frozenset(_FUNCTIONS) | frozenset(_LAZY_FUNCTIONS)

_ARITY: dict[str, tuple[int, int | None]] = {
    **{name: (lo, hi) for name, (_, lo, hi) in _FUNCTIONS.items()},
    "IF": (3, 4), "IFSET": (1, 3), "CASES": (2, None), "TRY": (1, None), "VALID": (1, 1),
    "NOSUBST": (1, 1), "ERROR": (0, 1), "ABORT": (0, 1),
}


def _unknown_function(fname: str) -> str:
    close = difflib.get_close_matches(fname.upper(), FUNCTION_NAMES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}()? " if close else ""
    known = ", ".join(sorted(FUNCTION_NAMES))
    return f"unknown function {fname}() ({hint}known functions: {known})"


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
            ev = _Evaluator({}, expr, where)
            if fname not in _ARITY:
                raise ev.fail(_unknown_function(fname))
            ev.check_arity(fname, args, *_ARITY[fname])
        stack.extend(_children(current))


def evaluate(expr: str, ns: Mapping[str, Any], *, where: str = "") -> Any:
    """Evaluate formula ``expr`` (the text after the leading '=') in namespace ``ns``.

    Returns the value; a formula that is (or yields) an unset name returns ``UNSET``, which
    callers treat as "no value" (revert to default). Any problem raises FormulaError naming
    ``where`` (e.g. "recipe.yml:12").
    """
    if not isinstance(expr, str):
        raise FormulaError(f"{_prefix(where)}a formula must be a string, got {_short(expr)}")
    node = parse(expr, where=where)
    ev = _Evaluator(ns, expr, where)
    try:
        value = ev.eval(node)
    except RadioflowError:
        raise
    except RecursionError:
        raise ev.fail("formula or the values it refers to are nested too deeply") from None
    except Exception as exc:   # anything a value's own methods may raise: report, no traceback
        raise ev.fail(f"{type(exc).__name__}: {exc}") from None
    return _unset_if_missing(value)


# ---------------------------------------------------------------------------------------------
# LazyMapping
# ---------------------------------------------------------------------------------------------

_resolving = threading.local()


def _active() -> list[tuple[int, str, str, str]]:
    stack = getattr(_resolving, "stack", None)
    if stack is None:
        stack = _resolving.stack = []
    return stack


def _needs_resolving(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("=") or "{" in value or "}" in value
    if isinstance(value, (list, tuple)):
        return any(_needs_resolving(v) for v in value)
    if isinstance(value, dict):
        return any(_needs_resolving(v) for v in value.values())
    return False


class LazyMapping(Mapping):
    """A read-only mapping whose formula / ``{}`` values are resolved on first access.

    ``raw`` holds the values as written (e.g. a recipe's inputs); ``ns_factory()`` returns
    the namespace they are evaluated in (which may contain this very mapping, so values can
    refer to each other). Results are cached. A value whose resolution requests itself
    raises CircularReferenceError showing the chain ``recipe.a -> recipe.b -> recipe.a``.
    ``where`` is a location string, or a mapping / callable giving one per key.
    """

    def __init__(self, raw: Mapping[str, Any], ns_factory: Callable[[], Mapping[str, Any]],
                 *, name: str = "",
                 where: str | Mapping[str, str] | Callable[[str], str] = "") -> None:
        self._raw = raw
        self._factory = ns_factory
        self._name = name
        self._where = where
        self._cache: dict[str, Any] = {}

    @property
    def raw(self) -> Mapping[str, Any]:
        """The unresolved values."""
        return self._raw

    def where_of(self, key: str) -> str:
        """Location string (file:line) for ``key``."""
        if callable(self._where):
            return self._where(key) or ""
        if isinstance(self._where, Mapping):
            return str(self._where.get(key, ""))
        return self._where

    def _label(self, key: str) -> str:
        return f"{self._name}.{key}" if self._name else str(key)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._cache[key]
        except (KeyError, TypeError):
            pass
        raw = self._raw[key]
        if not _needs_resolving(raw):
            return raw
        stack = _active()
        token = id(self)
        for i, (owner, other, _, _) in enumerate(stack):
            if owner == token and other == key:
                chain = " -> ".join([entry[2] for entry in stack[i:]] + [self._label(key)])
                raise CircularReferenceError(
                    f"{_prefix(stack[i][3])}circular reference: {chain}")
        where = self.where_of(key)
        stack.append((token, key, self._label(key), where))
        try:
            from radioflow.recipe.substitute import resolve_value  # circular import

            value = resolve_value(raw, self._factory(), where=where)
        finally:
            stack.pop()
        self._cache[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def resolved(self) -> dict[str, Any]:
        """All values, resolved (UNSET results included)."""
        return {key: self[key] for key in self._raw}

    def __repr__(self) -> str:
        return f"LazyMapping({self._name or '?'}: {list(self._raw)})"
