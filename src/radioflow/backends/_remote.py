"""Worker-side glue shared by the remote backends (Dask, Lithops, Kubernetes).

A remote worker receives an :class:`~radioflow.backends.base.Invocation` and the *dotted path*
of the function that runs it (always :func:`radioflow.invoke.execute.execute` in production), so
nothing but plain data crosses the wire and every backend runs exactly the same code. A cab
that ran and failed comes back as a ``Result`` with ``ok=False``; :func:`run_invocation` turns
that into :class:`ItemFailed` so the engine's own retry machinery (Dask ``retries=``, Lithops
``RetryingFunctionExecutor``) tries again, and :func:`failed_result` turns whatever is left
after the last try back into a failed ``Result`` with the item's error and log.
"""
from __future__ import annotations

import importlib
import pickle
import time
import traceback
from typing import Any, Callable

from ..invoke.invocation import Invocation, Result

EXECUTE = "radioflow.invoke.execute.execute"


class ItemFailed(Exception):
    """A cab ran and returned a failed :class:`Result` (raised so that engines retry it)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.error or f"step {result.step!r} failed (exit code {result.returncode})")
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        return (ItemFailed, (self.result,))


def check_payload(inv: Invocation, limit: int, backend: str) -> None:
    """Refuse invocations whose parameters carry data instead of URLs (``limit`` bytes pickled)."""
    size = len(pickle.dumps(inv.params, protocol=pickle.HIGHEST_PROTOCOL))
    if size > limit:
        from ..errors import UsageError

        raise UsageError(
            f"Step '{inv.step}' passes {size} bytes of parameter data to the {backend} backend "
            f"(limit backend.{backend}.max_payload_bytes = {limit}). Datasets and images move by URL "
            "(a path or s3://bucket/prefix/part-003.zarr), never inside the function payload: write "
            "the data to storage and pass its URL."
        )


def resolve(target: str) -> Callable[[Invocation], Result]:
    """Import ``package.module.function`` and return the function."""
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def run_invocation(inv: Invocation, target: str = EXECUTE, raise_on_failure: bool = True) -> Result:
    """Run ``inv`` with the function at ``target``; raise :class:`ItemFailed` when it failed."""
    result = resolve(target)(inv)
    if raise_on_failure and not result.ok:
        raise ItemFailed(result)
    return result


def failed_result(inv: Invocation, exc: BaseException, *, started: float = 0.0, attempts: int = 1) -> Result:
    """The ``Result`` for an item whose last attempt ended in ``exc``."""
    if isinstance(exc, ItemFailed):
        return exc.result
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    tries = f" after {attempts} attempt(s)" if attempts > 1 else ""
    finished = time.time()
    return Result(
        step=inv.step,
        ok=False,
        returncode=1,
        log=text,
        started=started,
        finished=finished,
        error=f"{type(exc).__name__}: {exc}{tries}",
        usage={"invocations": float(attempts), "wall_seconds": finished - started if started else 0.0},
    )


def run_batch(invs: list[Invocation], target: str = EXECUTE) -> list[Result]:
    """Run several invocations in one worker call (amortises per-call start-up on Lithops).

    Each item's failure, raised or returned, becomes that item's failed ``Result``; the
    client retries exactly the failed items.
    """
    out = []
    for inv in invs:
        started = time.time()
        try:
            out.append(run_invocation(inv, target, raise_on_failure=False))
        except Exception as exc:  # noqa: BLE001 - a raising item must not sink its batch
            out.append(failed_result(inv, exc, started=started))
    return out
