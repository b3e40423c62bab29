"""One run at a time per work folder: ``<workdir>/.radioflow/run.lock``.

Two runs in one folder would write the same outputs and records concurrently and leave them
mixed. A run takes the lock (created with ``O_EXCL``, so exactly one process wins) holding its
pid, host and run id, and removes it when it ends. A second run stops with an error naming
the running one, or waits for it (``--wait``). A lock whose process is gone (same host, pid
dead) is stale: it is taken over. A lock of another host is never broken automatically.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from ..errors import UsageError
from ..processes import pid_alive

LOCK_NAME = "run.lock"


class WorkdirBusy(UsageError):
    """Another live run holds the work folder."""


def lock_path(workdir: str | os.PathLike[str]) -> Path:
    """Where the lock of ``workdir`` lives."""
    return Path(workdir, ".radioflow", LOCK_NAME)


def read_lock(workdir: str | os.PathLike[str]) -> dict | None:
    """The holder of ``workdir``'s lock (pid, host, run_id, started), None if unlocked."""
    try:
        return json.loads(lock_path(workdir).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _stale(holder: dict | None) -> bool:
    if holder is None:
        return True
    return holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid") or 0))


def _try_take(path: Path, payload: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    return True


def _break_stale(path: Path) -> None:
    """Remove a stale lock: renamed aside first, so two runs recovering it cannot both win."""
    aside = path.with_name(f"{path.name}.stale-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, aside)
        holder = None
        with contextlib.suppress(ValueError, OSError):
            holder = json.loads(aside.read_text())
        if not _stale(holder):  # it was taken again meanwhile: put it back
            with contextlib.suppress(OSError):
                os.link(aside, path)
        aside.unlink()


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike[str], run_id: str, *, wait: bool = False,
                 poll: float = 0.5) -> Iterator[None]:
    """Hold the lock of ``workdir`` for run ``run_id``; see the module docstring."""
    path = lock_path(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id,
                          "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
    while not _try_take(path, payload):
        holder = read_lock(workdir)
        if holder is not None and _stale(holder):
            _break_stale(path)
            continue
        if holder is None:  # being written or just released, or left empty by a killed run
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > 5:
                    path.unlink()
            time.sleep(0.05)
            continue
        if not wait:
            raise WorkdirBusy(
                f"Work folder {os.path.abspath(workdir)} is in use by run {holder.get('run_id')} "
                f"(pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}); "
                "two runs in one folder would mix their outputs. Wait for it (--wait), or use another "
                f"folder (-C DIR). If that run is gone, delete {path}."
            )
        time.sleep(poll)
    try:
        yield
    finally:
        if (read_lock(workdir) or {}).get("run_id") == run_id:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
