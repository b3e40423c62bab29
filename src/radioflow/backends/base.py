"""The one interface every execution backend implements.

The runner turns each step (or each item of a scatter loop) into an :class:`Invocation`:
plain, picklable data naming the cab and its fully resolved parameters. A backend decides
*where* it runs (this process, a process pool, Dask, Lithops, a Kubernetes Job) and returns a
:class:`Result`. Executing an invocation is always :func:`radioflow.invoke.execute.execute`,
so every backend runs exactly the same code.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from ..invoke import Invocation, Result


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
