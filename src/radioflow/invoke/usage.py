"""What one cab invocation used, measured in the process that does the work.

The numbers travel back in ``Result.usage`` (plain floats), so a Dask worker, a Lithops
function or a Kubernetes pod reports them exactly as a local run does. Keys:

* ``wall_seconds``: time spent executing the invocation(s).
* ``cpu_seconds``: user + system CPU. A subprocess cab: the child's own ``wait4`` rusage (it and
  every descendant it waited for). An in-process cab: this process's ``getrusage`` delta (all its
  threads) plus that of any children the cab reaped.
* ``peak_memory``: peak resident set size in bytes. A subprocess cab: the child's ``ru_maxrss``.
  An in-process cab: the process's peak RSS *during* the call: on Linux the high-water mark is
  reset to the current RSS (``/proc/self/clear_refs`` = 5) before the call and ``VmHWM`` read
  after it, so a long-lived runner or worker that once held more does not inflate a later step;
  the value includes the interpreter's own resident memory, as a serverless function's does.
  Without ``clear_refs`` it is the lifetime ``ru_maxrss``.
* ``bytes_read`` / ``bytes_written``: Linux ``/proc/<pid>/io`` ``rchar``/``wchar``: every byte
  passed through read/write system calls (local files whether or not they hit the page cache,
  sockets, so S3 traffic through s3fs/boto including HTTP framing, and pipes); memory-mapped
  file access is not seen. Absent where ``/proc`` is not.
* ``invocations``: how many times a cab ran (retries included when the backend adds them up).

Process-wide counters cannot tell two in-process cabs running at the same time in one process
apart (a Dask worker with several threads): each then sees the other's CPU and I/O too.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from typing import Mapping

_LINUX = sys.platform.startswith("linux")
_RSS_UNIT = 1024 if _LINUX else 1            # ru_maxrss: KiB on Linux, bytes on macOS
_SUMMED = ("wall_seconds", "cpu_seconds", "bytes_read", "bytes_written", "invocations")

Usage = dict[str, float]


def _read(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def _io(pid: int | str = "self") -> tuple[int, int] | None:
    """``(rchar, wchar)`` of a process, or None without ``/proc``."""
    raw = _read(f"/proc/{pid}/io")
    if not raw:
        return None
    fields = dict(line.split(b":", 1) for line in raw.splitlines()[:2])
    return int(fields[b"rchar"]), int(fields[b"wchar"])


def _hwm() -> int | None:
    """The process's peak RSS since the last reset (``VmHWM``), in bytes."""
    raw = _read("/proc/self/status")
    if not raw:
        return None
    start = raw.find(b"VmHWM:")
    if start < 0:
        return None
    return int(raw[start + 6:raw.index(b"kB", start)]) * 1024


def _reset_hwm() -> bool:
    """Reset the peak-RSS mark to the current RSS (Linux 4.0+); whether that worked."""
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, b"5")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _cpu(ru: resource.struct_rusage) -> float:
    return ru.ru_utime + ru.ru_stime


class Meter:
    """Measure an in-process stretch of work: ``start()``, run, then ``stop()``."""

    def start(self) -> None:
        self._self = resource.getrusage(resource.RUSAGE_SELF)
        self._children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._io = _io()
        self._reset = _reset_hwm()

    def stop(self, wall: float) -> Usage:
        """Usage since :meth:`start` (``wall`` seconds long)."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        io = _io()
        cpu = _cpu(own) - _cpu(self._self) + _cpu(children) - _cpu(self._children)
        peak = (_hwm() if self._reset else None) or own.ru_maxrss * _RSS_UNIT
        if children.ru_maxrss > self._children.ru_maxrss:    # a child reaped now was the largest so far
            peak = max(peak, children.ru_maxrss * _RSS_UNIT)
        out: Usage = {"wall_seconds": wall, "cpu_seconds": max(0.0, cpu), "peak_memory": float(peak),
                      "invocations": 1.0}
        if io is not None and self._io is not None:
            out["bytes_read"] = float(io[0] - self._io[0])
            out["bytes_written"] = float(io[1] - self._io[1])
        return out


def reap(proc: subprocess.Popen) -> tuple[int, Usage]:
    """Wait for ``proc`` and return its exit code and the child's own usage (CPU, peak RSS, I/O).

    The child is first waited for without reaping it (``waitid(WNOWAIT)``) so that its
    ``/proc/<pid>/io`` can still be read, then reaped with ``wait4`` for its rusage.
    """
    if not hasattr(os, "wait4"):
        return proc.wait(), {}
    io = None
    try:
        if hasattr(os, "waitid"):
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            io = _io(proc.pid)
        _, status, ru = os.wait4(proc.pid, 0)
    except ChildProcessError:     # already reaped elsewhere: only the exit code is known
        return proc.wait(), {}
    proc.returncode = os.waitstatus_to_exitcode(status)
    usage: Usage = {"cpu_seconds": _cpu(ru), "peak_memory": float(ru.ru_maxrss * _RSS_UNIT)}
    if io is not None:
        usage["bytes_read"], usage["bytes_written"] = float(io[0]), float(io[1])
    return proc.returncode, usage


def combine(first: Mapping[str, float], second: Mapping[str, float]) -> Usage:
    """Usage of two runs together: times, bytes and invocations add up, peak memory is the larger."""
    out: Usage = dict(first)
    for key, value in second.items():
        if key not in out:
            out[key] = value
        elif key in _SUMMED:
            out[key] = out[key] + value
        else:
            out[key] = max(out[key], value)
    return out


__all__ = ["Meter", "Usage", "combine", "reap"]
