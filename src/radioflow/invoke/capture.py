"""Per-thread capture of ``sys.stdout``/``sys.stderr`` for cabs run in this process.

``contextlib.redirect_stdout`` swaps a process-wide object, so two cabs running in threads
(Dask workers run tasks in threads) would steal each other's output. Instead a router is
installed once on ``sys.stdout``/``sys.stderr``; it sends each write to the sink registered by
the calling thread, or to the original stream when the thread has none.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

_local = threading.local()
_install_lock = threading.Lock()


class _Router:
    """A text stream that forwards to the current thread's sink or to the wrapped stream."""

    def __init__(self, wrapped: TextIO) -> None:
        self._wrapped = wrapped

    def write(self, text: str) -> int:
        sink = getattr(_local, "sink", None)
        if sink is None:
            return self._wrapped.write(text)
        sink(text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "sink", None) is None:
            self._wrapped.flush()

    def isatty(self) -> bool:
        return False if getattr(_local, "sink", None) else self._wrapped.isatty()

    def __getattr__(self, name: str):
        return getattr(self._wrapped, name)


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)


@contextmanager
def capture(sink: Callable[[str], None]) -> Iterator[None]:
    """Send everything this thread prints to ``sink`` (text fragments, not lines)."""
    _install()
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield
    finally:
        _local.sink = previous
