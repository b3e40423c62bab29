"""``{namespace.key:format}`` substitution in strings, and resolution of raw parameter values.

The braces are parsed here (not by ``str.format``, which would allow attribute access to
arbitrary Python objects); each field is looked up through the same namespaces as formulas
and formatted with ``format(value, spec)``. ``{{`` and ``}}`` are literal braces.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from radioflow.recipe.formula import (
    UNSET,
    FormulaError,
    Missing,
    evaluate,
    is_formula,
    lookup,
    short_repr,
)

__all__ = ["substitute", "resolve_value", "check_substitution"]

_SPEC_NUMBERS = re.compile(r"\d+")
_PART = re.compile(r"[^.\[\]]*(?:\[[^\[\]]+\][^.\[\]]*)*")
_LAST_PART = re.compile(r"([^.\[\]]+)((?:\[[^\[\]]+\])*)")
_CONVERSIONS: dict[str, Callable[[Any], str]] = {"r": repr, "s": str, "a": ascii}
_INDEX = re.compile(r"\[([^\[\]]+)\]")


def _fail(text: str, where: str, message: str) -> FormulaError:
    prefix = f"{where}: " if where else ""
    return FormulaError(f"{prefix}substitution in {text!r}: {message}")


def _split_field(field: str) -> tuple[str, str | None, str]:
    """Split 'name!conv:spec' -> (name, conv, spec); '[..]' in the name may hold ':' or '!'."""
    depth = 0
    for i, ch in enumerate(field):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(depth - 1, 0)
        elif depth == 0 and ch in "!:":
            name = field[:i]
            if ch == ":":
                return name, None, field[i + 1:]
            rest = field[i + 1:]
            conv, _, spec = rest.partition(":")
            return name, conv, spec
    return field, None, ""


def _field_segments(name: str) -> list[tuple[str, str | int]] | None:
    """'recipe.ms[0]' -> [(".", 'recipe'), (".", 'ms'), ("[", 0)]; None if malformed.

    Brackets inside a dotted part that is followed by more parts (``steps.s[12].out``) stay
    in the part: a wildcard, or an index into it (``items[1].name``) resolved on lookup.
    Brackets at the end of the field index the value, as in ``str.format``.
    """
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(name):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                return None
        elif ch == "." and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    if depth:
        return None
    parts.append(name[start:])
    last = _LAST_PART.fullmatch(parts[-1])
    if not last or not all(p and _PART.fullmatch(p) for p in parts[:-1]):
        return None
    segments: list[tuple[str, str | int]] = [(".", p) for p in parts[:-1]]
    segments.append((".", last.group(1)))
    for index in _INDEX.findall(last.group(2)):
        segments.append(("[", int(index) if re.fullmatch(r"-?\d+", index) else index))
    return segments


def _lookup_field(name: str, segments: tuple, ns: Mapping[str, Any], text: str,
                  where: str) -> Any:
    """Look a field up: dotted parts through the formula namespaces, then [index] parts."""
    value: Any = ns
    pending: list[str] = []

    def flush(value: Any) -> Any:
        if not pending:
            return value
        found = lookup(value, pending)
        if isinstance(found, Missing):
            raise _fail(text, where, f"unresolved substitution {{{name}}}: {found.detail}")
        pending.clear()
        return found

    for kind, seg in segments:
        if kind == ".":
            pending.append(seg)
            continue
        value = flush(value)
        try:
            value = value[seg]
        except (IndexError, KeyError, TypeError) as exc:
            raise _fail(text, where, f"unresolved substitution {{{name}}}: "
                                     f"cannot index with [{seg}] ({exc!r})") from None
    value = flush(value)
    if value is UNSET:
        raise _fail(text, where, f"unresolved substitution {{{name}}}: it is UNSET")
    return value


def _format(value: Any, conv: str | None, spec: str, name: str, text: str, where: str) -> str:
    if any(len(num) > 3 for num in _SPEC_NUMBERS.findall(spec)):
        raise _fail(text, where, f"format spec {spec!r} in {{{name}}}: widths and precisions "
                                 "above 999 are not allowed")
    try:
        if conv is not None:
            value = _CONVERSIONS[conv](value)
        return format(value, spec)
    except Exception as exc:   # whatever the value's __format__ raises: report it
        raise _fail(text, where, f"cannot format {{{name}}} ({short_repr(value)}) with "
                                 f"spec {spec!r}: {type(exc).__name__}: {exc}") from None


def _find_close(text: str, start: int) -> int:
    """Index of the '}' closing the field opened at text[start-1]; -1 if none."""
    depth = 1
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


@lru_cache(maxsize=8192)
def _parse_template(text: str) -> tuple:
    """Split ``text`` into literal strings and fields ``(name, segments, conv, spec)``.

    Cached per string; a malformed template is cached as ``("error", message)``.
    """
    pieces: list[Any] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            close = _find_close(text, i + 1)
            if close < 0:
                return ("error", f"unmatched '{{' at column {i + 1}")
            field = text[i + 1:close]
            name, conv, spec = _split_field(field)
            name = name.strip()
            if not name:
                return ("error", f"empty field '{{{field}}}' at column {i + 1}")
            segments = None if "{" in name or "}" in name else _field_segments(name)
            if segments is None:
                return ("error", f"malformed field '{{{field}}}' at column {i + 1}")
            if conv is not None and conv not in _CONVERSIONS:
                return ("error", f"unknown conversion '!{conv}' in {{{name}}}")
            if re.search(r"\{[^{}]*\{", spec):
                return ("error", f"format spec {spec!r} in {{{name}}} is nested too deeply")
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append((name, tuple(segments), conv, spec))
            i = close + 1
        elif ch == "}":
            if text.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            return ("error", f"single '}}' at column {i + 1} (write '}}}}' for a literal brace)")
        else:
            j = i
            while j < n and text[j] not in "{}":
                j += 1
            literal.append(text[i:j])
            i = j
    if literal:
        pieces.append("".join(literal))
    return ("ok", tuple(pieces))


def substitute(text: str, ns: Mapping[str, Any], *, where: str = "") -> Any:
    """Replace each ``{ns.key[:spec]}`` field of ``text``; ``{{``/``}}`` give literal braces.

    The result is always a string (as in Stimela); a non-string is returned unchanged. A
    field that cannot be resolved raises FormulaError ("unresolved substitution") naming
    ``where``.
    """
    if not isinstance(text, str) or ("{" not in text and "}" not in text):
        return text
    status, pieces = _parse_template(str(text))
    if status == "error":
        raise _fail(text, where, pieces)
    out: list[str] = []
    for piece in pieces:
        if type(piece) is str:
            out.append(piece)
            continue
        name, segments, conv, spec = piece
        if "{" in spec or "}" in spec:
            spec = substitute(spec, ns, where=where)
        value = _lookup_field(name, segments, ns, text, where)
        out.append(_format(value, conv, spec, name, text, where))
    return "".join(out)


def check_substitution(text: str, *, where: str = "") -> None:
    """Prevalidate the ``{}`` syntax of ``text`` (braces, field names, conversions) without
    looking anything up, so a loader can report malformed templates before a run."""
    if isinstance(text, str) and ("{" in text or "}" in text):
        status, message = _parse_template(str(text))
        if status == "error":
            raise _fail(text, where, message)


def resolve_value(value: Any, ns: Mapping[str, Any], *, where: str = "") -> Any:
    """Resolve a raw parameter value: ``=formula`` is evaluated, ``==x`` is the literal
    ``=x`` (with ``{}`` substitution, like Stimela), strings with braces are substituted,
    lists and dicts are resolved element by element; anything else is returned as is.
    """
    if isinstance(value, str):
        value = str(value)
        if value.startswith("=="):
            return substitute(value[1:], ns, where=where)
        if is_formula(value):
            return evaluate(value[1:], ns, where=where)
        return substitute(value, ns, where=where)
    if isinstance(value, (list, tuple)):
        return [resolve_value(v, ns, where=where) for v in value]
    if isinstance(value, dict):
        return {k: resolve_value(v, ns, where=where) for k, v in value.items()}
    return value
