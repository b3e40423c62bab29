"""The local backend: steps run in this process, scatter loops in a process pool.

``run`` executes in-process (no start-up cost). ``map`` sends invocations to a
``ProcessPoolExecutor`` using the ``spawn`` start method (safe with threads, Dask clients and
open casacore tables in the parent); the pool is created on first use and reused until
:meth:`LocalBackend.close`. A worker process that dies (segfault, ``os._exit``, OOM kill)
breaks the whole pool; the items that were in flight are then re-run one per fresh process so
that only the item that really crashes fails, with a one-paragraph error naming its exit code.
Failed items are retried up to ``retries`` times.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Sequence, cast

from ..invoke import Invocation, Result
from ..invoke.execute import execute
from ..invoke.usage import combine


def _partial_log(inv: Invocation) -> str:
    """What the crashed item managed to write to its log file (already scrubbed of secrets)."""
    if not inv.log_path:
        return ""
    try:
        return Path(inv.log_path).read_text(errors="replace")
    except OSError:
        return ""


def _crash_result(inv: Invocation, exitcode: int | None, started: float) -> Result:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    elif exitcode is not None:
        how = f"exited abruptly with code {exitcode}"
    else:
        how = "died abruptly"
    error = (f"step '{inv.step}': the worker process running it {how} before returning a result "
             "(the cab crashed the interpreter, called os._exit, or was killed, e.g. out of memory)")
    line = f"# error: {error}\n"
    if inv.log_path:
        with open(inv.log_path, "a") as fh:
            fh.write(line)
    finished = time.time()
    return Result(step=inv.step, ok=False, returncode=exitcode if exitcode is not None else -1,
                  log=_partial_log(inv) or line, started=started, finished=finished, error=error,
                  usage={"invocations": 1.0, "wall_seconds": finished - started})


def _transfer_failure(inv: Invocation, exc: Exception, started: float) -> Result:
    error = (f"step '{inv.step}': could not pass the invocation to or its result from a worker process "
             f"({type(exc).__name__}: {exc}); parameters and outputs must be picklable plain data")
    return Result(step=inv.step, ok=False, returncode=-1, log=f"# error: {error}\n", started=started,
                  finished=time.time(), error=error)


def _child(inv: Invocation, conn: Any) -> None:
    conn.send(execute(inv))
    conn.close()


class LocalBackend:
    """Run invocations on this machine: in-process for one, a process pool for many."""

    name = "local"

    def __init__(self, max_workers: int = 0, *, retries: int = 0, start_method: str = "spawn") -> None:
        self.max_workers = int(max_workers) if max_workers and int(max_workers) > 0 else (os.cpu_count() or 1)
        self.retries = max(0, int(retries or 0))
        self._ctx: Any = multiprocessing.get_context(start_method)   # a concrete context (has Process)
        self._pool: ProcessPoolExecutor | None = None

    def run(self, invocation: Invocation) -> Result:
        """Run one invocation in this process (retrying failures ``retries`` times; the usage of
        every attempt is added up)."""
        result = execute(invocation)
        for _ in range(self.retries):
            if result.ok:
                break
            spent = result.usage
            result = execute(invocation)
            result.usage = combine(spent, result.usage)
        return result

    def map(self, invocations: Sequence[Invocation]) -> list[Result]:
        """Run independent invocations in parallel; results come back in input order."""
        invocations = list(invocations)
        if len(invocations) <= 1:
            return [self.run(inv) for inv in invocations]
        results: list[Result | None] = [None] * len(invocations)
        pending = list(range(len(invocations)))
        for _attempt in range(self.retries + 1):
            for index, result in zip(pending, self._map_once([invocations[i] for i in pending])):
                if results[index] is not None:   # a retry: count the failed attempts' usage too
                    result.usage = combine(cast(Result, results[index]).usage, result.usage)
                results[index] = result
            pending = [i for i in pending if not cast(Result, results[i]).ok]
            if not pending:
                break
        return results  # type: ignore[return-value]

    def _map_once(self, invocations: list[Invocation]) -> list[Result]:
        started = time.time()
        futures: list[Future] = []
        pool = self._get_pool()
        try:
            futures = [pool.submit(execute, inv) for inv in invocations]
        except BrokenProcessPool:
            self._discard_pool()
        results: list[Result | None] = [None] * len(invocations)
        broken: list[int] = []
        try:
            for i, fut in enumerate(futures):
                try:
                    results[i] = fut.result()
                except BrokenProcessPool:
                    broken.append(i)
                except Exception as exc:  # e.g. a value that cannot be pickled to or from the worker
                    results[i] = _transfer_failure(invocations[i], exc, started)
        except BaseException:  # Ctrl-C: stop the workers now, not after their current items
            self._kill_pool()
            raise
        broken += list(range(len(futures), len(invocations)))
        if broken:
            self._discard_pool()
            isolated = self._run_isolated([invocations[i] for i in broken], started)
            for i, result in zip(broken, isolated):
                results[i] = result
        return results  # type: ignore[return-value]

    def _run_isolated(self, invocations: list[Invocation], started: float) -> list[Result]:
        """Run each invocation in its own process, so a crash only fails that item."""
        def one(inv: Invocation) -> Result:
            recv, send = self._ctx.Pipe(duplex=False)
            proc = self._ctx.Process(target=_child, args=(inv, send), daemon=True)
            proc.start()
            send.close()
            try:
                result = recv.recv()
            except EOFError:
                result = None
            finally:
                recv.close()
                proc.join()
            return result if result is not None else _crash_result(inv, proc.exitcode, started)

        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(invocations))) as threads:
            return list(threads.map(one, invocations))

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.max_workers, mp_context=self._ctx)
        return self._pool

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for proc in list(getattr(pool, "_processes", {}).values()):
            if proc.is_alive():
                proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Shut the worker pool down (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "LocalBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
