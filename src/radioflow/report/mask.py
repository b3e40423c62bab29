"""Secrets never reach a report or the console page (names judged by :mod:`radioflow.secrets`).

Three defences, because records come from runs of any age: values under secret-looking names
are replaced at any depth; ``name=value`` words of a command line are masked by name; and the
values of secret-named environment variables of this process, plus the password of URLs
(``s3://user:password@host``), are scrubbed from any text (logs, errors).
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterable, Mapping

from ..secrets import is_secret

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<pw>[^@\s/]+)(?=@)", re.I)
_ASSIGN = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)(?P<sep>\s*[=:]\s*)(?P<val>\"[^\"]*\"|'[^']*'|\S+)")


class Masker:
    """Masks values by name and scrubs known secret values from text."""

    def __init__(self, extra_values: Iterable[str] = ()) -> None:
        values = [v for k, v in os.environ.items() if is_secret(k) and len(v) >= 8]
        values += [str(v) for v in extra_values if len(str(v)) >= 4]
        self._values = sorted(set(values), key=len, reverse=True)

    def learn(self, mapping: Mapping[str, Any]) -> None:
        """Remember the values of secret-named keys (at any depth) so they are scrubbed from text too."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, Mapping):
                for k, v in node.items():
                    if is_secret(str(k)) and isinstance(v, (str, int, float)) and str(v) != MASK and len(str(v)) >= 4:
                        found.append(str(v))
                    walk(v)
            elif isinstance(node, (list, tuple)):
                for v in node:
                    walk(v)

        walk(mapping)
        self._values = sorted(set(self._values) | set(found), key=len, reverse=True)

    def text(self, text: str | None) -> str:
        """``text`` with known secret values, URL passwords and ``secret_name=value`` words masked."""
        if not text:
            return ""
        for value in self._values:
            text = text.replace(value, MASK)
        text = _URL_PASSWORD.sub(lambda m: m["pre"] + MASK, text)
        return _ASSIGN.sub(lambda m: m["key"] + m["sep"] + MASK if is_secret(m["key"]) else m[0], text)

    def value(self, value: Any, name: str = "") -> Any:
        """A parameter value with secret-named entries masked at any depth and text scrubbed."""
        if name and is_secret(name) and value not in (None, ""):
            return MASK
        if isinstance(value, Mapping):
            return {str(k): self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value
