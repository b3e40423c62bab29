"""The one interface every execution backend implements.

The runner turns each step (or each item of a scatter loop) into an :class:`Invocation`:
plain, picklable data naming the cab and its fully resolved parameters. A backend decides
*where* it runs (this process, a process pool, Dask, Lithops, a Kubernetes Job) and returns a
:class:`Result`. Executing an invocation is always :func:`radioflow.run.execute.execute`,
so every backend runs exactly the same code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable


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


@runtime_checkable
class Backend(Protocol):
    """Where invocations run."""

    name: str

    def run(self, invocation: Invocation) -> Result:
        """Run one invocation and wait for it."""

    def map(self, invocations: Sequence[Invocation]) -> list[Result]:
        """Run many independent invocations in parallel; results in input order."""

    def close(self) -> None:
        """Release workers, clusters and executors."""
