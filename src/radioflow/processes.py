"""Process liveness and the clean-up of temporaries that dead writers left behind.

Writers stage output as hidden siblings named ``.<name>.<kind>-<pid>-...`` (then rename them
into place); a writer killed mid-way leaves its sibling behind, and the next writer removes
those whose process is gone.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` is running (a zombie counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child still answers kill(0); look at /proc where available
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def remove_path(path: str | os.PathLike[str]) -> None:
    """Delete a file, link or directory tree if it exists (``shutil.rmtree(..., ignore_errors=True)``
    alone silently keeps a plain file)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def remove_stale_siblings(target: Path, kinds: tuple[str, ...] = ("tmp",)) -> list[Path]:
    """Delete ``.<target>.<kind>-<pid>-*`` siblings whose writer process has died; returns them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        for kind in kinds:
            prefix = f".{target.name}.{kind}-"
            if entry.name.startswith(prefix):
                pid = entry.name[len(prefix):].split("-", 1)[0]
                if pid.isdigit() and not pid_alive(int(pid)):
                    remove_path(entry.path)
                    removed.append(Path(entry.path))
    return removed


def pause_point(name: str) -> None:
    """Crash-test hook: when ``RADIOFLOW_PAUSE_AT`` names this point, announce it on stderr (and
    by creating the file ``RADIOFLOW_PAUSE_FLAG``, for writers whose stderr is captured) and
    sleep (``RADIOFLOW_PAUSE_SECONDS``, default 60), so that a test can SIGKILL the writer here."""
    if os.environ.get("RADIOFLOW_PAUSE_AT") != name:
        return
    sys.stderr.write(f"radioflow: paused at {name}\n")
    sys.stderr.flush()
    flag = os.environ.get("RADIOFLOW_PAUSE_FLAG")
    if flag:
        with open(flag, "w") as fh:
            fh.write(name)
    time.sleep(float(os.environ.get("RADIOFLOW_PAUSE_SECONDS", "60")))
