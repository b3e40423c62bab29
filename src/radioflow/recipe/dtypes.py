"""Parameter dtypes written in Python typing syntax, parsed without ``eval``.

``DType.parse("Optional[List[File]]")`` gives a small tree; :func:`coerce` checks (and
mildly converts, e.g. ``"3"`` -> ``3`` for ``int``) a value against it.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SCALARS = {"str", "int", "float", "bool", "complex", "Any", "None", "File", "Directory", "MS", "URI", "URL"}
FILE_TYPES = {"File", "Directory", "MS"}
PATH_TYPES = FILE_TYPES | {"URI", "URL"}
GENERICS = {"List": (1, 1), "list": (1, 1), "Tuple": (1, None), "tuple": (1, None),
            "Dict": (2, 2), "dict": (2, 2), "Union": (1, None), "Optional": (1, 1)}
_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_.]*)|(\.\.\.)|([\[\],]))")


class DTypeError(ValueError):
    """The dtype text is not a supported type expression."""


@dataclass(frozen=True)
class DType:
    """A parsed dtype: a name and type arguments (``List[int]`` -> ("List", (int,)))."""

    name: str
    args: tuple[DType, ...] = ()

    @staticmethod
    def parse(text: str) -> DType:
        """Parse a dtype string; raises :class:`DTypeError` with a short reason."""
        if not isinstance(text, str) or not text.strip():
            raise DTypeError("a dtype must be a non-empty string such as 'int' or 'List[File]'")
        tokens = _tokenize(text)
        node, pos = _parse(tokens, 0, text)
        if pos != len(tokens):
            raise DTypeError(f"unexpected '{tokens[pos]}' after the type")
        return node

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}[{', '.join(str(a) for a in self.args)}]"

    @property
    def base(self) -> str:
        """Canonical outer name (List, Tuple, Dict, Union or a scalar)."""
        return {"list": "List", "tuple": "Tuple", "dict": "Dict"}.get(self.name, self.name)

    def members(self) -> tuple[DType, ...]:
        """Alternatives of a Union/Optional, else just this type."""
        if self.name == "Union":
            return tuple(m for a in self.args for m in a.members())
        if self.name == "Optional":
            return (*self.args[0].members(), DType("None"))
        return (self,)

    @property
    def is_file(self) -> bool:
        """A File/Directory/MS (possibly optional)."""
        return any(m.name in FILE_TYPES for m in self.members())

    @property
    def is_file_list(self) -> bool:
        """A list of File/Directory/MS (possibly optional)."""
        return any(m.base in ("List", "Tuple") and any(a.is_file for a in m.args) for m in self.members())


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise DTypeError(f"unexpected character {text[pos]!r} at position {pos + 1}")
        tokens.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return tokens


def _parse(tokens: list[str], pos: int, text: str) -> tuple[DType, int]:
    if pos >= len(tokens):
        raise DTypeError("the type is incomplete")
    name = tokens[pos]
    if name.startswith("typing."):
        name = name[len("typing."):]
    if name == "any":   # Stimela evaluates dtypes as Python, where the builtin any() stands for Any
        name = "Any"
    if name in ("[", "]", ",", "..."):
        raise DTypeError(f"expected a type name, found '{name}'")
    pos += 1
    if name in SCALARS:
        if pos < len(tokens) and tokens[pos] == "[":
            raise DTypeError(f"'{name}' takes no type arguments")
        return DType(name), pos
    if name not in GENERICS:
        known = ", ".join(sorted(SCALARS | set(GENERICS)))
        raise DTypeError(f"unknown type '{name}' (known: {known})")
    if pos >= len(tokens) or tokens[pos] != "[":
        return DType(name, (DType("Any"),) * (2 if name in ("Dict", "dict") else 1)), pos
    pos += 1
    args: list[DType] = []
    while True:
        if pos < len(tokens) and tokens[pos] == "...":
            args.append(DType("..."))
            pos += 1
        else:
            arg, pos = _parse(tokens, pos, text)
            args.append(arg)
        if pos >= len(tokens):
            raise DTypeError("missing ']'")
        if tokens[pos] == ",":
            pos += 1
            continue
        if tokens[pos] == "]":
            pos += 1
            break
        raise DTypeError(f"expected ',' or ']', found '{tokens[pos]}'")
    lo, hi = GENERICS[name]
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise DTypeError(f"'{name}' takes {lo if lo == hi else f'at least {lo}'} type argument(s), got {len(args)}")
    return DType(name, tuple(args)), pos


class CoercionError(ValueError):
    """A value does not match a dtype."""


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(value: Any, dtype: DType) -> Any:
    """Return ``value`` converted to ``dtype`` or raise :class:`CoercionError`."""
    coercer = _COERCERS.get(dtype.base)
    if coercer is None:
        raise CoercionError(f"unsupported dtype {dtype}")
    return coercer(value, dtype)


def _coerce_any(value: Any, dtype: DType) -> Any:
    return value


def _coerce_none(value: Any, dtype: DType) -> None:
    if value is None:
        return None
    raise CoercionError(f"expected None, got {_describe(value)}")


def _coerce_union(value: Any, dtype: DType) -> Any:
    if value is None and any(m.name == "None" for m in dtype.members()):
        return None
    reasons = []
    # exact-type matches first, so Union[int, str] keeps "3" a string
    for member in sorted(dtype.members(), key=lambda m: 0 if _exact(value, m) else 1):
        try:
            return coerce(value, member)
        except CoercionError as exc:
            reasons.append(str(exc))
    raise CoercionError(f"{_describe(value)} matches none of {dtype} ({'; '.join(reasons)})")


def _coerce_bool(value: Any, dtype: DType) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise CoercionError(f"expected a bool, got {_describe(value)}")


def _coerce_int(value: Any, dtype: DType) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise CoercionError(f"expected an int, got {_describe(value)}")


def _coerce_float(value: Any, dtype: DType) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise CoercionError(f"expected a float, got {_describe(value)}")


def _coerce_complex(value: Any, dtype: DType) -> complex:
    if isinstance(value, (int, float, complex)) and not isinstance(value, bool):
        return complex(value)
    if isinstance(value, str):
        try:
            return complex(value.strip().replace(" ", ""))
        except ValueError:
            pass
    raise CoercionError(f"expected a complex number, got {_describe(value)}")


def _coerce_str(value: Any, dtype: DType) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise CoercionError(f"expected a string, got {_describe(value)}")


def _coerce_path(value: Any, dtype: DType) -> str:
    if isinstance(value, str):   # a File/Directory/MS may start with ~ (home), as in Stimela
        return os.path.expanduser(value) if dtype.base in FILE_TYPES and value.startswith("~") else value
    if hasattr(value, "__fspath__"):
        return str(value)
    raise CoercionError(f"expected a {dtype.base} path, got {_describe(value)}")


def _coerce_sequence(value: Any, dtype: DType) -> list:
    if isinstance(value, (str, int, float, bool)):
        value = [value]   # a single value where a list is expected: a one-element list
    if not isinstance(value, (list, tuple)):
        raise CoercionError(f"expected a list, got {_describe(value)}")
    if dtype.base == "Tuple" and not (len(dtype.args) == 2 and dtype.args[1].name == "..."):
        if len(dtype.args) != len(value) and not (len(dtype.args) == 1):
            raise CoercionError(f"expected {len(dtype.args)} elements, got {len(value)}")
        if len(dtype.args) > 1:
            return [coerce(v, a) for v, a in zip(value, dtype.args)]
    elem = dtype.args[0] if dtype.args else DType("Any")
    out = []
    for i, v in enumerate(value):
        try:
            out.append(coerce(v, elem))
        except CoercionError as exc:
            raise CoercionError(f"element {i}: {exc}") from None
    return out


def _coerce_dict(value: Any, dtype: DType) -> dict:
    if not isinstance(value, dict):
        raise CoercionError(f"expected a mapping, got {_describe(value)}")
    kt, vt = (dtype.args + (DType("Any"), DType("Any")))[:2]
    out = {}
    for k, v in value.items():
        try:
            out[coerce(k, kt)] = coerce(v, vt)
        except CoercionError as exc:
            raise CoercionError(f"entry {k!r}: {exc}") from None
    return out


#: One coercer per canonical dtype name (:attr:`DType.base`).
_COERCERS: dict[str, Callable[[Any, DType], Any]] = {
    "Any": _coerce_any, "None": _coerce_none, "Union": _coerce_union, "Optional": _coerce_union,
    "bool": _coerce_bool, "int": _coerce_int, "float": _coerce_float, "complex": _coerce_complex,
    "str": _coerce_str, **{name: _coerce_path for name in PATH_TYPES},
    "List": _coerce_sequence, "Tuple": _coerce_sequence, "Dict": _coerce_dict,
}


def _exact(value: Any, dtype: DType) -> bool:
    name = dtype.base
    if name == "bool":
        return isinstance(value, bool)
    if name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "float":
        return isinstance(value, float)
    if name == "str" or name in PATH_TYPES:
        return isinstance(value, str)
    if name in ("List", "Tuple"):
        return isinstance(value, (list, tuple))
    if name == "Dict":
        return isinstance(value, dict)
    return name == "Any"


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"
