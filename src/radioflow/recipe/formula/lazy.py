"""LazyMapping: recipe inputs and step parameters resolved on first access, with cycle detection."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .values import CircularReferenceError, where_prefix

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
                what = "self-referencing formula or substitution, " if i == len(stack) - 1 else ""
                raise CircularReferenceError(
                    f"{where_prefix(stack[i][3])}{what}circular reference: {chain}")
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
