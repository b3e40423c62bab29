"""Invocations and results as JSON: how a step crosses a process or cluster boundary.

Used by ``radioflow step INVOCATION.json`` (the command a Kubernetes Job runs) and by any
backend that ships work as files. Results are written atomically where the target allows it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..invoke.invocation import Invocation, Result

_INV_FIELDS = {f.name for f in dataclasses.fields(Invocation)}
_RES_FIELDS = {f.name for f in dataclasses.fields(Result)}


def invocation_from_dict(data: Any, *, where: str = "invocation") -> Invocation:
    """Build an :class:`Invocation` from its JSON form, with one-paragraph errors."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: an invocation must be a JSON object with 'step', 'cab' and 'params'.")
    unknown = sorted(set(data) - _INV_FIELDS)
    if unknown:
        raise UsageError(f"{where}: unknown invocation key(s) {', '.join(unknown)}; expected {', '.join(sorted(_INV_FIELDS))}.")
    for key, kind in (("step", str), ("cab", dict), ("params", dict)):
        if not isinstance(data.get(key), kind):
            raise UsageError(f"{where}: '{key}' must be a {kind.__name__} (got {type(data.get(key)).__name__}).")
    if not isinstance(data.get("env", {}), dict):
        raise UsageError(f"{where}: 'env' must be an object of strings.")
    return Invocation(**data)


def load_invocation(path: str | Path) -> Invocation:
    """Read an invocation JSON file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"Cannot read invocation file {path}: {exc.strerror or exc}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"Invocation file {path}:{exc.lineno} is not valid JSON: {exc.msg}.") from None
    except RecursionError:
        raise UsageError(f"Invocation file {path} is nested too deeply to be an invocation.") from None
    return invocation_from_dict(data, where=str(path))


def invocation_to_json(inv: Invocation) -> str:
    """An invocation as JSON (non-JSON values are written as strings)."""
    return json.dumps(dataclasses.asdict(inv), default=str, sort_keys=True)


def result_to_dict(result: Result, *, include_log: bool = True, max_bytes: int | None = None) -> dict[str, Any]:
    """A result as JSON-ready data; ``max_bytes`` trims the error text to fit (e.g. 4096 on K8s)."""
    data = json.loads(json.dumps(dataclasses.asdict(result), default=str))
    if not include_log:
        data.pop("log", None)
    if max_bytes is not None:
        size = len(json.dumps(data).encode())
        if size > max_bytes and data.get("error"):
            keep = max(0, len(data["error"]) - (size - max_bytes) - 3)
            data["error"] = data["error"][:keep] + "..."
    return data


def result_from_dict(data: dict[str, Any]) -> Result:
    """Rebuild a :class:`Result` (unknown keys ignored)."""
    return Result(**{k: v for k, v in data.items() if k in _RES_FIELDS})


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (temp sibling + rename); devices such as /dev/termination-log directly."""
    path = Path(path)
    text = json.dumps(data, sort_keys=True)
    if path.exists() and not path.is_file():
        with open(path, "w") as fh:
            fh.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
