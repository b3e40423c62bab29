"""What crosses from the runner to a backend and back: plain, picklable data.

An :class:`Invocation` names a cab and its fully resolved parameters; a :class:`Result` is what
running it produced. Both are data only, so they travel to process pools, Dask workers, Lithops
functions and Kubernetes Jobs unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Invocation:
    """One call of a cab with resolved parameters."""

    step: str
    cab: dict[str, Any]
    params: dict[str, Any]
    workdir: str = "."
    log_path: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    """What came back from running an :class:`Invocation`."""

    step: str
    ok: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    returncode: int = 0
    log: str = ""
    started: float = 0.0
    finished: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)   # see radioflow.invoke.usage
