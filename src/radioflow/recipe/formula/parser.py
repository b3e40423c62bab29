"""Formula text to AST: a hand-written tokenizer and a recursive-descent parser.

The AST is made of small tuples (documented below) and cached per formula string, so a
formula that is evaluated many times (a loop, a large recipe) is parsed once.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .values import FormulaSyntaxError, where_prefix

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


def children(node: tuple) -> tuple:
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
    return any(_has_bare_name(child) for child in children(node))


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
            f"{where_prefix(where)}syntax error in formula at column {pos + 2}: {message}\n"
            f"    ={text}\n    {caret}")
    return node
